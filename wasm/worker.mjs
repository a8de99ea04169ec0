// Module Web Worker for the protocol self-test and the Chromium tests: boots the runtime from
// /dist/ with boot.mjs (as the web app's worker does), then runs one Python call per message.
// wasm/build.py ships it as dist/worker.mjs.
//
// Message in:  {id, request: {files, module, function, argument}}
// Message out: {id, ok: true, value, stdout} or {id, ok: false, error, stdout}

const DIST_URL = new URL("/dist/", import.meta.url);
const FILES_ROOT = "/home/pyodide/securepacs_run";
const stdout = [];

self.addEventListener("securitypolicyviolation", (event) => {
  self.postMessage({
    kind: "violation",
    text: `${event.violatedDirective} blocked ${event.blockedURI || "inline"}`,
  });
});

async function boot() {
  const manifest = await (await fetch(new URL("manifest.json", DIST_URL), { cache: "no-cache" })).json();
  const { bootRuntime } = await import(new URL("boot.mjs", DIST_URL).href);
  const { pyodide } = await bootRuntime(DIST_URL, manifest, { onOutput: (line) => stdout.push(line) });
  pyodide.runPython(await (await fetch(new URL("call.py", DIST_URL))).text());
  const call = pyodide.globals.get("securepacs_call");
  return { pyodide, call };
}

// Booting once per worker: the driver may send several calls to the same page.
const runtime = boot();

self.addEventListener("message", async ({ data: { id, request } }) => {
  try {
    const { pyodide, call } = await runtime;
    for (const [name, source] of Object.entries(request.files)) {
      if (name.startsWith("/") || name.split("/").includes("..")) {
        throw new Error(`bad file entry ${JSON.stringify(name)}`);
      }
      const target = `${FILES_ROOT}/${name}`;
      pyodide.FS.mkdirTree(target.slice(0, target.lastIndexOf("/")));
      pyodide.FS.writeFile(target, source, { encoding: "utf8" });
    }
    pyodide.FS.mkdirTree(FILES_ROOT);
    // A string, or a PyProxy of a future for an async Python function: await takes both.
    const value = await call(FILES_ROOT, request.module, request.function, request.argument);
    self.postMessage({ id, ok: true, value, stdout: stdout.splice(0) });
  } catch (error) {
    const text = String(error?.message ?? error);
    self.postMessage({ id, ok: false, error: text, stdout: stdout.splice(0) });
  }
});

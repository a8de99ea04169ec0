// Module Web Worker: boots Pyodide, msgspec, our wheel and libsodium.js from /dist/, as the client
// worker will, then runs one Python call per message. wasm/build.py ships it as dist/worker.mjs;
// the protocol self-test (`just run`) and the Chromium tests both drive it.
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

async function fetchBytes(relative) {
  const response = await fetch(new URL(relative, DIST_URL));
  if (!response.ok) {
    throw new Error(`GET ${relative}: HTTP ${response.status}`);
  }
  return new Uint8Array(await response.arrayBuffer());
}

async function boot() {
  const manifest = await (await fetch(new URL("manifest.json", DIST_URL))).json();
  const indexURL = new URL(manifest.pyodide.index, DIST_URL).href;
  const { loadPyodide } = await import(new URL("pyodide.mjs", indexURL).href);
  const pyodide = await loadPyodide({
    indexURL,
    packages: [],
    stdout: (line) => stdout.push(line),
    stderr: (line) => stdout.push(line),
  });
  for (const wheel of manifest.wheels) {
    pyodide.unpackArchive(await fetchBytes(wheel), "wheel");
  }
  const sodium = (await import(new URL(manifest.libsodium.module, DIST_URL).href)).default;
  await sodium.ready;
  pyodide.registerJsModule("_securepacs_sodium", sodium);
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

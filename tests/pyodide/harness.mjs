// Runs one Python call inside Pyodide under Node 20, with the same runtime the browser gets.
//
// Boots Pyodide from wasm/dist (offline: nothing is fetched), unpacks the wheels listed in
// wasm/dist/manifest.json, loads libsodium.js from wasm/dist and registers it as the
// `_securepacs_sodium` module the crypto backend imports. Then it reads one JSON request on stdin:
//
//   {"files": {"relative/path.py": "source", ...}, "module": "name", "function": "name",
//    "argument": "<string>"}
//
// writes the files into a folder on sys.path, imports `module`, calls `function(argument)` (a
// str -> str function) and writes the returned string to stdout. Nothing else goes to stdout:
// Python's print and Pyodide's own messages are sent to stderr, so the caller can parse stdout.
// On any error the traceback goes to stderr and the exit status is non-zero.
//
// SECUREPACS_WASM_DIST overrides the dist folder; SECUREPACS_HARNESS_TIMINGS=1 reports the boot
// and call durations on stderr.

import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DIST = path.resolve(process.env.SECUREPACS_WASM_DIST ?? path.join(HERE, "../../wasm/dist"));
// A folder of its own, so that test files cannot shadow the stdlib or the installed wheels.
const FILES_ROOT = "/home/pyodide/securepacs_run";
const SODIUM_MODULE_NAME = "_securepacs_sodium";
const timings = process.env.SECUREPACS_HARNESS_TIMINGS === "1";

function fail(message) {
  process.stderr.write(message.endsWith("\n") ? message : `${message}\n`);
  process.exit(1);
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function parseRequest(text) {
  let request;
  try {
    request = JSON.parse(text);
  } catch (error) {
    fail(`harness: the request on stdin is not JSON: ${error.message}`);
  }
  const { files, module, function: func, argument } = request ?? {};
  if (typeof files !== "object" || files === null || Array.isArray(files)) {
    fail("harness: 'files' must be an object of relative path -> source");
  }
  for (const [name, source] of Object.entries(files)) {
    const normalized = path.posix.normalize(name);
    if (path.posix.isAbsolute(name) || normalized.startsWith("..") || typeof source !== "string") {
      fail(`harness: bad file entry ${JSON.stringify(name)}`);
    }
  }
  for (const [key, value] of [["module", module], ["function", func], ["argument", argument]]) {
    if (typeof value !== "string") {
      fail(`harness: '${key}' must be a string`);
    }
  }
  return { files, module, func, argument };
}

async function loadManifest() {
  let manifest;
  try {
    manifest = JSON.parse(await readFile(path.join(DIST, "manifest.json"), "utf8"));
  } catch (error) {
    fail(`harness: cannot read ${DIST}/manifest.json (run python wasm/build.py): ${error.message}`);
  }
  // The runtime under test must be the one the build pinned: a stale or edited file fails here.
  await Promise.all(
    manifest.artifacts.map(async ({ path: relative, sha256 }) => {
      const digest = createHash("sha256")
        .update(await readFile(path.join(DIST, relative)))
        .digest("hex");
      if (digest !== sha256) {
        fail(`harness: ${relative} does not match manifest.json; rebuild with wasm/build.py`);
      }
    }),
  );
  return manifest;
}

async function boot(manifest) {
  const pyodideDir = path.join(DIST, manifest.pyodide.index);
  const { loadPyodide } = await import(pathToFileURL(path.join(pyodideDir, "pyodide.mjs")).href);
  const toStderr = (line) => process.stderr.write(`${line}\n`);
  const pyodide = await loadPyodide({
    indexURL: `${pyodideDir}${path.sep}`,
    packages: [],
    stdout: toStderr,
    stderr: toStderr,
  });
  for (const wheel of manifest.wheels) {
    const bytes = await readFile(path.join(DIST, wheel));
    pyodide.unpackArchive(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length), "wheel");
  }
  const sodiumUrl = pathToFileURL(path.join(DIST, manifest.libsodium.module)).href;
  const sodium = (await import(sodiumUrl)).default;
  await sodium.ready;
  pyodide.registerJsModule(SODIUM_MODULE_NAME, sodium);
  return pyodide;
}

function writeFiles(pyodide, files) {
  pyodide.FS.mkdirTree(FILES_ROOT);
  for (const [name, source] of Object.entries(files)) {
    const target = path.posix.join(FILES_ROOT, path.posix.normalize(name));
    pyodide.FS.mkdirTree(path.posix.dirname(target));
    pyodide.FS.writeFile(target, source, { encoding: "utf8" });
  }
}

async function call(pyodide, { module, func, argument }) {
  pyodide.runPython(await readFile(path.join(DIST, "call.py"), "utf8"));
  const driver = pyodide.globals.get("securepacs_call");
  try {
    return await driver(FILES_ROOT, module, func, argument);
  } finally {
    driver.destroy();
  }
}

async function main() {
  const request = parseRequest(await readStdin());
  const started = performance.now();
  const manifest = await loadManifest();
  const pyodide = await boot(manifest);
  const booted = performance.now();
  writeFiles(pyodide, request.files);
  const result = await call(pyodide, request);
  const finished = performance.now();
  if (timings) {
    const bootMs = (booted - started).toFixed(0);
    const callMs = (finished - booted).toFixed(0);
    process.stderr.write(`harness: boot ${bootMs} ms, call ${callMs} ms\n`);
  }
  await new Promise((resolve, reject) => {
    process.stdout.write(result, (error) => (error ? reject(error) : resolve()));
  });
}

main().then(
  // Pyodide keeps no handles open, but exiting explicitly guards against a hung test run.
  () => process.exit(0),
  (error) => fail(error?.message ?? String(error)),
);

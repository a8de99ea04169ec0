// Boots the SecurePACS runtime in a module Web Worker: Pyodide, msgspec, pydicom, our wheel and
// libsodium.js, every artifact checked against the SHA-256 that manifest.json lists for it.
// wasm/build.py ships it as dist/boot.mjs; the test worker (dist/worker.mjs) and the web app's
// worker (client/web/src/worker.ts) both import it, so there is one boot path.
//
// bootRuntime(base, manifest, {onProgress, onOutput}) -> {pyodide, sodium}
//   base:       URL of the folder holding the artifacts (it ends with "/")
//   manifest:   the parsed manifest.json of that folder
//   onProgress: ({loaded, total, step}) while artifacts arrive and Python starts
//   onOutput:   each line Python prints (stdout and stderr)
// loadSodium(base, manifest) -> sodium: libsodium.js alone, checked the same way (the web app
//   worker's helper thread, which opens downloads' files, needs nothing else).

function sri(hex) {
  const bytes = new Uint8Array(hex.match(/../g).map((pair) => parseInt(pair, 16)));
  return `sha256-${btoa(String.fromCharCode(...bytes))}`;
}

// Fetch with Subresource Integrity: the browser refuses bytes that do not match the manifest.
// The body is read as a stream to report progress; a mismatch rejects the read.
async function fetchChecked(url, sha256, onChunk) {
  const response = await fetch(url, { integrity: sri(sha256) });
  if (!response.ok) {
    throw new Error(`The runtime file ${url.pathname} answered HTTP ${response.status}. Reload the page.`);
  }
  const reader = response.body.getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.length;
    onChunk(value.length);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

const isSodium = (a) => a.path.startsWith("libsodium/");

export async function bootRuntime(base, manifest, { onProgress = () => {}, onOutput = () => {} } = {}) {
  // What this boot reads: the Pyodide core, the wheels and libsodium. Nothing else is fetched.
  const wanted = manifest.artifacts.filter(
    (a) => a.path.startsWith(manifest.pyodide.index) || manifest.wheels.includes(a.path) || isSodium(a),
  );
  const total = wanted.reduce((sum, a) => sum + a.size, 0);
  let loaded = 0;
  const report = (step) => onProgress({ loaded, total, step });
  report("download");
  const bytes = new Map(
    await Promise.all(
      wanted.map(async (a) => [
        a.path,
        await fetchChecked(new URL(a.path, base), a.sha256, (n) => {
          loaded += n;
          report("download");
        }),
      ]),
    ),
  );
  report("python");
  const indexURL = new URL(manifest.pyodide.index, base).href;
  const { loadPyodide } = await import(new URL("pyodide.mjs", indexURL).href);
  // Pyodide fetches its wasm core, standard library and lock file itself. While it starts, it
  // gets the bytes checked above instead: what it compiles is what the manifest names, and
  // nothing is downloaded twice where the browser keeps no cache (private windows).
  const checked = new Map([...bytes].map(([path, data]) => [new URL(path, base).href, data]));
  const platformFetch = globalThis.fetch;
  globalThis.fetch = (input, init) => {
    const data = checked.get(new URL(input instanceof Request ? input.url : String(input), base).href);
    if (data === undefined) return platformFetch(input, init);
    const type = data.length > 4 && data[0] === 0 && data[1] === 0x61 ? "application/wasm" : "application/octet-stream";
    return Promise.resolve(new Response(data, { headers: { "Content-Type": type } }));
  };
  let pyodide;
  try {
    pyodide = await loadPyodide({ indexURL, packages: [], stdout: onOutput, stderr: onOutput });
  } finally {
    globalThis.fetch = platformFetch;
  }
  report("packages");
  for (const wheel of manifest.wheels) {
    pyodide.unpackArchive(bytes.get(wheel), "wheel");
  }
  const sodium = await importSodium(base, manifest);
  pyodide.registerJsModule("_securepacs_sodium", sodium);
  report("ready");
  return { pyodide, sodium };
}

// Callers fetch the module's files with fetchChecked first: the import then takes the checked
// bytes from the browser's cache.
async function importSodium(base, manifest) {
  const sodium = (await import(new URL(manifest.libsodium.module, base).href)).default;
  await sodium.ready;
  return sodium;
}

export async function loadSodium(base, manifest) {
  await Promise.all(manifest.artifacts.filter(isSodium).map((a) => fetchChecked(new URL(a.path, base), a.sha256, () => {})));
  return importSodium(base, manifest);
}

// Test page: owns one module Worker that boots Pyodide, and lets the driver run calls in it.
//
// The driver (drive.mjs) calls `window.securepacsRun(request)` with the same request shape as the
// Node harness and gets `{ok: true, value, stdout, violations}` or `{ok: false, error, ...}`.
// CSP violations on the page and in the worker are collected so the driver can fail on them: the
// point of this page is to prove the runtime works under the production policy.

const violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  violations.push(`page: ${event.violatedDirective} blocked ${event.blockedURI || "inline"}`);
});

const worker = new Worker(new URL("/dist/worker.mjs", import.meta.url), { type: "module" });
const pending = new Map();
let nextId = 1;

worker.addEventListener("message", ({ data }) => {
  if (data.kind === "violation") {
    violations.push(`worker: ${data.text}`);
    return;
  }
  const settle = pending.get(data.id);
  if (settle) {
    pending.delete(data.id);
    settle({ ...data, violations: [...violations] });
  }
});

worker.addEventListener("error", (event) => {
  const failure = { ok: false, error: `worker error: ${event.message}`, stdout: [] };
  for (const settle of pending.values()) {
    settle({ ...failure, violations: [...violations] });
  }
  pending.clear();
});

window.securepacsRun = (request) =>
  new Promise((resolve) => {
    const id = nextId++;
    pending.set(id, resolve);
    worker.postMessage({ id, request });
  });

document.getElementById("status").textContent = "ready";
window.securepacsReady = true;

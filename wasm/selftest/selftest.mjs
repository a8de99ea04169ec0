// Runs the protocol vectors and the Wycheproof vectors in the runtime worker, and shows the tally.
//
// The worker (dist/worker.mjs) boots Pyodide, msgspec, our wheel and libsodium.js, then runs one
// Python call per message: {id, request: {files, module, function, argument}}.

const statusLine = document.getElementById("status");
const progress = document.getElementById("progress");
const table = document.getElementById("results");
const failures = document.getElementById("failures");

const worker = new Worker("/dist/worker.mjs", { type: "module" });
const pending = new Map();
let nextId = 1;

worker.addEventListener("message", ({ data }) => {
  if (data.kind === "violation") {
    report("Content-Security-Policy", 0, 1, 0, [data.text]);
    return;
  }
  pending.get(data.id)?.(data);
  pending.delete(data.id);
});

function call(files, module, func, argument) {
  return new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, (reply) => (reply.ok ? resolve(reply.value) : reject(new Error(reply.error))));
    worker.postMessage({ id, request: { files, module, function: func, argument } });
  });
}

async function text(path) {
  const response = await fetch(path);
  if (!response.ok) {
    throw new Error(`GET ${path}: HTTP ${response.status}`);
  }
  return response.text();
}

function report(suite, passed, failed, seconds, details) {
  table.hidden = false;
  const row = table.tBodies[0].insertRow();
  row.insertCell().textContent = suite;
  const ok = row.insertCell();
  ok.textContent = String(passed);
  ok.className = "pass";
  const bad = row.insertCell();
  bad.textContent = String(failed);
  bad.className = failed ? "fail" : "pass";
  row.insertCell().textContent = `${seconds.toFixed(1)} s`;
  for (const detail of details) {
    failures.hidden = false;
    const item = document.createElement("li");
    item.textContent = `${suite}: ${detail}`;
    failures.querySelector("ul").append(item);
  }
  return failed;
}

async function main() {
  const files = {
    "runner.py": await text("/selftest/runner.py"),
    "wycheproof_runner.py": await text("/selftest/wycheproof_runner.py"),
  };
  const cases = await text("/selftest/cases.json");
  const wycheproof = JSON.parse(await text("/selftest/wycheproof.json"));
  const steps = 1 + wycheproof.length;
  let failed = 0;

  statusLine.textContent = "Booting Pyodide and running the protocol vectors…";
  let started = performance.now();
  const results = JSON.parse(await call(files, "runner", "run", cases));
  const bad = results.filter((result) => !result.ok);
  failed += report(
    "Protocol vectors",
    results.length - bad.length,
    bad.length,
    (performance.now() - started) / 1000,
    bad.map((result) => `${result.name}: ${result.detail}`),
  );
  progress.value = 100 / steps;

  for (const [index, name] of wycheproof.entries()) {
    statusLine.textContent = `Running Wycheproof ${name}…`;
    started = performance.now();
    const data = JSON.parse(await text(`/selftest/wycheproof/${name}.json`));
    const summary = JSON.parse(
      await call(files, "wycheproof_runner", "run", JSON.stringify({ name, data })),
    );
    failed += report(
      `Wycheproof ${name}`,
      summary.passed + summary.acceptable,
      summary.failed.length,
      (performance.now() - started) / 1000,
      summary.failed.map((id) => `test ${id}`),
    );
    progress.value = (100 * (index + 2)) / steps;
  }

  statusLine.textContent = failed
    ? `${failed} check(s) failed in this browser. Do not trust this installation; report it.`
    : "Every check passed in this browser.";
  statusLine.className = failed ? "failed" : "ok";
  document.body.dataset.selftest = failed ? "failed" : "passed";
}

main().catch((error) => {
  statusLine.textContent = `The self-test could not run: ${error.message}. Reload the page to retry.`;
  statusLine.className = "failed";
  document.body.dataset.selftest = "error";
});

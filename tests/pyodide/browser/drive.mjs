// Drives the smoke-test page in headless Chromium and prints the Python call's result.
//
//   node drive.mjs BASE_URL [CHROMIUM_PATH] < request.json
//
// BASE_URL serves tests/pyodide/browser at / and wasm/dist at /dist/ (pyodide_host.StaticSite).
// The request has the Node harness's shape. The returned string is the only stdout output; the
// worker's Python output, browser console messages and errors go to stderr. Any CSP violation
// fails the run, because the page exists to prove the runtime works under the production policy.

import { launchChromium } from "./chromium.mjs";

const CALL_TIMEOUT_MS = 240_000;

// A failure the driver explains itself; anything else is reported with its stack.
class DriveFailure extends Error {}

function fail(message) {
  process.stderr.write(message.endsWith("\n") ? message : `${message}\n`);
  process.exit(1);
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk);
  }
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

async function main() {
  const [baseUrl, executablePath = "/usr/bin/chromium"] = process.argv.slice(2);
  if (!baseUrl) {
    fail("usage: node drive.mjs BASE_URL [CHROMIUM_PATH] < request.json");
  }
  const request = await readStdin();
  const started = performance.now();
  const browser = await launchChromium(executablePath);
  try {
    const page = await browser.newPage();
    // The runtime must be proven under the policy, so every script it loads must carry one.
    const unguarded = [];
    page.on("response", (response) => {
      const type = response.request().resourceType();
      if (type !== "document" && type !== "script") {
        return;
      }
      const policy = response.headers()["content-security-policy"] ?? "";
      if (!/script-src [^;]*'self'/.test(policy) || policy.includes("'unsafe-eval'")) {
        unguarded.push(`${response.url()} (${policy || "no CSP"})`);
      }
    });
    page.on("response", (response) => {
      if (response.status() >= 400) {
        process.stderr.write(`HTTP ${response.status()}: ${response.url()}\n`);
      }
    });
    page.on("console", (message) =>
      process.stderr.write(`console.${message.type()}: ${message.text()}\n`),
    );
    page.on("pageerror", (error) => process.stderr.write(`page error: ${error.message}\n`));
    page.on("requestfailed", (failed) =>
      process.stderr.write(`request failed: ${failed.url()} ${failed.failure()?.errorText}\n`),
    );
    const response = await page.goto(new URL("index.html", baseUrl).href);
    if (!response?.ok()) {
      throw new DriveFailure(`GET index.html: HTTP ${response?.status()}`);
    }
    // page.evaluate goes through the DevTools protocol, which the page's CSP does not govern,
    // so driving the page needs no 'unsafe-eval' in the policy under test.
    let timer;
    const timeout = new Promise((_, reject) => {
      const expire = () => reject(new DriveFailure(`no result after ${CALL_TIMEOUT_MS} ms`));
      timer = setTimeout(expire, CALL_TIMEOUT_MS);
    });
    const result = await Promise.race([
      page.evaluate((call) => window.securepacsRun(call), request),
      timeout,
    ]).finally(() => clearTimeout(timer));
    for (const line of result.stdout ?? []) {
      process.stderr.write(`${line}\n`);
    }
    if (unguarded.length) {
      throw new DriveFailure(`served without the strict CSP:\n${unguarded.join("\n")}`);
    }
    if (result.violations?.length) {
      throw new DriveFailure(`CSP violations:\n${result.violations.join("\n")}`);
    }
    if (!result.ok) {
      throw new DriveFailure(result.error);
    }
    if (process.env.SECUREPACS_HARNESS_TIMINGS === "1") {
      const elapsed = (performance.now() - started).toFixed(0);
      process.stderr.write(`drive: launch + boot + call ${elapsed} ms\n`);
    }
    await new Promise((resolve, reject) => {
      process.stdout.write(result.value, (error) => (error ? reject(error) : resolve()));
    });
  } finally {
    await browser.close();
  }
}

main().then(
  () => process.exit(0),
  (error) => fail(error instanceof DriveFailure ? error.message : (error?.stack ?? String(error))),
);

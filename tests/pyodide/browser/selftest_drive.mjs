// Opens the protocol self-test page (wasm/selftest, what `just run` serves) in headless Chromium,
// waits until it has run every suite, and prints what a person would read as JSON on stdout.
//
//   node selftest_drive.mjs BASE_URL [SCREENSHOT.png]

import { launchChromium } from "./chromium.mjs";

const TIMEOUT_MS = 240_000;

const [baseUrl, screenshot] = process.argv.slice(2);
const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: { width: 900, height: 760 } });
  page.on("console", (message) =>
    process.stderr.write(`console.${message.type()}: ${message.text()}\n`),
  );
  await page.goto(baseUrl);
  await page.waitForSelector("body[data-selftest]", { timeout: TIMEOUT_MS });
  if (screenshot) {
    await page.screenshot({ path: screenshot, fullPage: true });
  }
  const seen = await page.evaluate(() => ({
    outcome: document.body.dataset.selftest,
    status: document.getElementById("status").textContent,
    rows: [...document.querySelectorAll("#results tbody tr")].map((row) =>
      [...row.cells].map((cell) => cell.textContent),
    ),
    failures: [...document.querySelectorAll("#failures li")].map((item) => item.textContent),
  }));
  process.stdout.write(JSON.stringify(seen));
} finally {
  await browser.close();
}

// Launching Debian's Chromium through playwright-core, shared by the drivers in this folder.

import { createRequire } from "node:module";

// playwright-core is pinned in wasm/package.json and installed by wasm/build.py (npm ci).
const require = createRequire(new URL("../../../wasm/package.json", import.meta.url));
const { chromium } = require("playwright-core");

// Playwright's own browser download does not work here; the Debian build needs these flags.
const CHROMIUM_FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export function launchChromium(executablePath = "/usr/bin/chromium") {
  return chromium.launch({ executablePath, headless: true, args: CHROMIUM_FLAGS });
}

// The composition root: the worker, local preferences and the app, wired once.

import "./style.css";

import { formatBytes } from "./dom";
import { Runtime } from "./rpc";
import { detectStorageMode, Preferences } from "./storage";
import { App } from "./ui/app";
import { Windows } from "./ui/windows";

async function main(): Promise<void> {
  const root = document.getElementById("app");
  if (root === null) return;
  const runtime = new Runtime();
  const app = new App(root, runtime, new Preferences(await detectStorageMode()), new Windows(runtime));
  const banner = app.banner();
  if (banner !== null) root.before(banner);
  app.bootScreen("Starting SecurePACS…");
  await new Promise<void>((resolve) => {
    runtime.onBoot((state) => {
      if (state.failed !== null) {
        app.bootScreen("SecurePACS could not start.", state.failed);
      } else if (state.ready) {
        // Read by the browser benchmark (bench/browser.py): the worker's own boot time.
        document.body.dataset.runtimeMs = String(Math.round(state.milliseconds ?? 0));
        resolve();
      } else if (state.step === "download" && state.total > 0) {
        const percent = Math.floor((100 * state.loaded) / state.total);
        app.bootScreen(`Loading the encryption runtime: ${percent} % of ${formatBytes(state.total)}`, "The first visit downloads it once; later visits start from the browser's cache.");
      } else {
        app.bootScreen("Starting the encryption runtime…");
      }
    });
  });
  try {
    await app.start();
  } catch {
    // The first request failed (the network dialog has said so): leave a way back.
    app.bootScreen("SecurePACS cannot reach the server.", "Check your network connection, then reload the page.");
  }
}

void main();

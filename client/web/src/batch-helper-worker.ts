// The helper thread's script (batch-helper.ts): it loads libsodium.js through the runtime's boot
// module, every file checked against the runtime's manifest as the worker's boot checks it, then
// opens the batches the worker sends.

import { serveOpens } from "./batch-helper";
import type { RuntimeManifest } from "./messages";
import { type RawSodium, StreamOpener } from "./stream-open";

/** The first message: the runtime's folder (it ends with "/") and its manifest. */
export interface HelperStart {
  base: string;
  manifest: RuntimeManifest;
}

interface BootModule {
  loadSodium(base: URL, manifest: RuntimeManifest): Promise<{ libsodium: RawSodium }>;
}

const scope = self as unknown as DedicatedWorkerGlobalScope;

scope.addEventListener(
  "message",
  (event: MessageEvent<HelperStart>) => {
    void start(event.data).then(
      (opener) => {
        serveOpens(scope, opener);
        scope.postMessage({ ready: true });
      },
      () => scope.postMessage({ ready: false }),
    );
  },
  { once: true },
);

async function start({ base, manifest }: HelperStart): Promise<StreamOpener> {
  const folder = new URL(base);
  const { loadSodium } = (await import(/* @vite-ignore */ new URL("boot.mjs", folder).href)) as BootModule;
  const sodium = await loadSodium(folder, manifest);
  return new StreamOpener(sodium.libsodium);
}

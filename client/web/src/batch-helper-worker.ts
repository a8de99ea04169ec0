// The helper thread's script (batch-helper.ts): it loads libsodium.js as the worker's boot does,
// every file checked against the runtime's manifest, then opens the batches the worker sends.

import { serveOpens } from "./batch-helper";
import { type RawSodium, StreamOpener } from "./stream-open";

/** The first message: where libsodium.js is, and the SHA-256 (SRI) of each of its files. */
export interface HelperStart {
  module: string;
  files: { url: string; integrity: string }[];
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

async function start({ module, files }: HelperStart): Promise<StreamOpener> {
  // Fetched with their SHA-256 first, as bootRuntime fetches them: the import then takes the
  // checked bytes from the browser's cache.
  await Promise.all(
    files.map(async ({ url, integrity }) => {
      const response = await fetch(url, { integrity });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      await response.arrayBuffer();
    }),
  );
  const sodium = ((await import(/* @vite-ignore */ module)) as { default: { ready: Promise<void>; libsodium: RawSodium } }).default;
  await sodium.ready;
  return new StreamOpener(sodium.libsodium);
}

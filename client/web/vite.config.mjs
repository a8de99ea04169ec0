// Builds the app into dist/. The runtime (wasm/dist, built first by `just wasm`) is not bundled:
// the worker loads it from the server's /dist/@<digest>/, and the digest and SHA-256 of the
// runtime's manifest are compiled in here, so the app accepts exactly the runtime it was built
// with and the browser may cache every runtime file for good.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const manifestPath = fileURLToPath(new URL("../../wasm/dist/manifest.json", import.meta.url));
const manifest = readFileSync(manifestPath);
const digest = createHash("sha256").update(manifest).digest();

export default defineConfig({
  base: "/",
  define: {
    __RUNTIME_DIGEST__: JSON.stringify(digest.toString("hex").slice(0, 16)),
    __RUNTIME_SRI__: JSON.stringify(`sha256-${digest.toString("base64")}`),
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    // Source maps would publish nothing secret, but they double the bundle the server holds.
    sourcemap: false,
    assetsInlineLimit: 0,
    // Four pages: the app, the viewer window, the download window (protocol.md §14.5) and
    // the page an anonymous link opens (§15.5).
    rollupOptions: {
      input: {
        app: fileURLToPath(new URL("index.html", import.meta.url)),
        viewer: fileURLToPath(new URL("viewer.html", import.meta.url)),
        download: fileURLToPath(new URL("download.html", import.meta.url)),
        link: fileURLToPath(new URL("link.html", import.meta.url)),
      },
    },
  },
  worker: { format: "es" },
});

// Node's side of stream_vectors.mjs: node run_node.mjs REPO -> the results as JSON on stdout.
// stream-open.ts is compiled with the web app's own TypeScript; libsodium.js is the runtime's
// pinned copy in wasm/dist.

import { readFile, readdir } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";

import { runVectors } from "./stream_vectors.mjs";

const repo = process.argv[2];
const require = createRequire(path.join(repo, "client/web/package.json"));
const ts = require("typescript");
const source = await readFile(path.join(repo, "client/web/src/stream-open.ts"), "utf8");
const { outputText } = ts.transpileModule(source, {
  compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
});
const module = await import(`data:text/javascript;base64,${Buffer.from(outputText).toString("base64")}`);
const dist = path.join(repo, "wasm/dist");
const manifest = JSON.parse(await readFile(path.join(dist, "manifest.json"), "utf8"));
const sodium = (await import(pathToFileURL(path.join(dist, manifest.libsodium.module)).href)).default;
await sodium.ready;
const folder = path.join(repo, "tests/vectors/stream");
const vectors = [];
for (const name of (await readdir(folder)).sort()) {
  if (name.endsWith(".json")) vectors.push(JSON.parse(await readFile(path.join(folder, name), "utf8")));
}
process.stdout.write(JSON.stringify(await runVectors(module, sodium, vectors)));

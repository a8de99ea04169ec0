// Node's side of stream_vectors.mjs: node run_node.mjs REPO -> the results as JSON on stdout.
// stream-open.ts is compiled with the web app's own TypeScript; libsodium.js is the runtime's
// pinned copy in wasm/dist.

import path from "node:path";
import { pathToFileURL } from "node:url";

import { compile } from "./compile.mjs";
import { runtimeSodium, streamVectors } from "./node_runtime.mjs";
import { runVectors } from "./stream_vectors.mjs";

const repo = process.argv[2];
const folder = await compile(repo, ["stream-open"]);
const module = await import(pathToFileURL(path.join(folder, "stream-open.mjs")).href);
const sodium = await runtimeSodium(repo);
process.stdout.write(JSON.stringify(await runVectors(module, sodium, await streamVectors(repo))));

// What the Node harnesses of tests/web share: the runtime's pinned libsodium.js (wasm/dist) and
// the shared STREAM vectors (tests/vectors/stream).

import { readFile, readdir } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";

/** libsodium-wrappers-sumo as the worker loads it, once ready. */
export async function runtimeSodium(repo) {
  const dist = path.join(repo, "wasm/dist");
  const manifest = JSON.parse(await readFile(path.join(dist, "manifest.json"), "utf8"));
  const sodium = (await import(pathToFileURL(path.join(dist, manifest.libsodium.module)).href)).default;
  await sodium.ready;
  return sodium;
}

/** Every STREAM vector, in file name order. */
export async function streamVectors(repo) {
  const folder = path.join(repo, "tests/vectors/stream");
  const vectors = [];
  for (const name of (await readdir(folder)).sort()) {
    if (name.endsWith(".json")) vectors.push(JSON.parse(await readFile(path.join(folder, name), "utf8")));
  }
  return vectors;
}

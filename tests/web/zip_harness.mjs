// The download's zip writer and CRC-32 (client/web/src/download) under Node, for
// test_zip_writer.py: node zip_harness.mjs REPO, then one JSON request per line on stdin and
// one JSON answer per line on stdout.
//
// {"crc": base64, "from": n, "offset": k} -> {"crc": n}: the CRC of the bytes, continuing
//   from `from`, read from `k` bytes into a buffer
// {"files": [{name, size, seed, pieces: [n, ...]}], "modified": ms, "limits": {u32, u16}|null}
//   -> {"zip": base64, "length": zipLength(...)}; file k's byte i is (seed + 31 i) mod 256 and
//   it arrives in pieces of the listed sizes (the rest in one piece). {"error": message} if the
//   writer refused. A file with "run": {count, mode} begins a framed run of `count` files, as
//   the worker frames a group: "framed" gives the run's entries in one buffer (heads and tails
//   from zipFrames, CRCs filled in), "declined" gives null, "wrongCrc" gives a CRC list that
//   differs from the tails, "short" a buffer one byte short.

import path from "node:path";
import readline from "node:readline";
import { pathToFileURL } from "node:url";

import { compile } from "./compile.mjs";

const repo = process.argv[2];
const folder = await compile(repo, ["download/crc32", "download/zip-writer"]);
const { crc32 } = await import(pathToFileURL(path.join(folder, "download/crc32.mjs")).href);
const { zipFrames, zipLength, zipStream } = await import(pathToFileURL(path.join(folder, "download/zip-writer.mjs")).href);

function content(size, seed) {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i += 1) bytes[i] = (seed + 31 * i) & 255;
  return bytes;
}

async function* pieces(bytes, sizes) {
  let at = 0;
  for (const size of sizes) {
    if (at >= bytes.length) break;
    yield bytes.subarray(at, at + size);
    at += size;
  }
  if (at < bytes.length) yield bytes.subarray(at);
}

async function answer(request) {
  if (request.crc !== undefined) {
    // At `offset` bytes into its buffer, as a file inside a group of files is.
    const bytes = Buffer.from(request.crc, "base64");
    const buffer = new Uint8Array((request.offset ?? 0) + bytes.length);
    buffer.set(bytes, request.offset ?? 0);
    return { crc: crc32(buffer.subarray(request.offset ?? 0), request.from ?? 0) };
  }
  const limits = request.limits ?? undefined;
  const frames = zipFrames(request.files, new Date(request.modified), limits);
  const framedRun = (first, { count, mode }) => async () => {
    if (mode === "declined") return null;
    const parts = [];
    const crc32s = [];
    for (let k = first; k < first + count; k += 1) {
      const f = request.files[k];
      const bytes = content(f.size, f.seed);
      const crc = crc32(bytes);
      const tail = frames[k].tail.slice();
      new DataView(tail.buffer).setUint32(4, crc, true);
      parts.push(frames[k].head, bytes, tail);
      crc32s.push(crc);
    }
    let joined = new Uint8Array(Buffer.concat(parts));
    if (mode === "wrongCrc") crc32s[0] = (crc32s[0] + 1) >>> 0;
    if (mode === "short") joined = joined.subarray(0, joined.length - 1);
    return { bytes: joined, crc32s };
  };
  const files = request.files.map((f, index) => ({
    name: f.name,
    size: f.size,
    input: pieces(content(f.actual ?? f.size, f.seed), f.pieces),
    ...(f.run === undefined ? {} : { run: { count: f.run.count, read: framedRun(index, f.run) } }),
  }));
  try {
    const stream = zipStream(files, new Date(request.modified), limits);
    const parts = [];
    for await (const part of stream) parts.push(Buffer.from(part.buffer, part.byteOffset, part.byteLength));
    return { zip: Buffer.concat(parts).toString("base64"), length: zipLength(files, limits) };
  } catch (error) {
    return { error: `${error.name}: ${error.message}` };
  }
}

for await (const line of readline.createInterface({ input: process.stdin })) {
  process.stdout.write(`${JSON.stringify(await answer(JSON.parse(line)))}\n`);
}

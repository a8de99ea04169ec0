// The worker's batch reader (client/web/src/batch-read.ts) under Node, for test_batch_read.py:
// node batch_read_node.mjs REPO -> JSON on stdout. The files are the shared STREAM vectors that
// open (tests/vectors/stream), sealed as the server would send them one after the other; fetch
// is replaced by one that answers each batch with the body a case asks for.

import path from "node:path";
import { pathToFileURL } from "node:url";

import { compile } from "./compile.mjs";
import { runtimeSodium, streamVectors } from "./node_runtime.mjs";
import { contentKey, hex } from "./stream_vectors.mjs";

const repo = process.argv[2];
const folder = await compile(repo, ["batch-read", "batch-helper", "stream-open", "download/crc32"]);
const { readBatch, BatchFailure, OpenerPool, localOpener } = await import(pathToFileURL(path.join(folder, "batch-read.mjs")).href);
const { helperOpener, serveOpens } = await import(pathToFileURL(path.join(folder, "batch-helper.mjs")).href);
const { StreamOpener } = await import(pathToFileURL(path.join(folder, "stream-open.mjs")).href);
const sodium = await runtimeSodium(repo);

const files = [];
for (const vector of await streamVectors(repo)) {
  if (vector.op !== "stream.open" || vector.expect !== "ok") continue;
  const sealed = hex(vector.inputs.sealed);
  const fileId = hex(vector.inputs.file_id);
  files.push({
    name: vector.name,
    sealed,
    plaintext: vector.outputs.plaintext,
    entry: () => ({
      fileId,
      contentKey: contentKey(sodium, hex(vector.inputs.study_key), fileId),
      ciphertextSize: sealed.length,
      plaintextSize: vector.outputs.plaintext.length / 2,
      ciphertextHash: new Uint8Array(0),
    }),
  });
}
for (const file of files) file.hash = new Uint8Array(await crypto.subtle.digest("SHA-256", file.sealed));

function concat(parts) {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

let body = null;
let status = 200;
let byteStream = true;
// What a request gets instead, by its body (the plan's): an answer of its own, after a delay.
const answers = new Map();
// Chunks of 1,000 bytes, as a network delivers a body in pieces; a byte stream as Chromium's
// fetch gives, or (byteStream false) a plain one, as a browser without BYOB reads gives.
globalThis.fetch = async (_path, init) => {
  const own = answers.get(init.body);
  const bytes = own?.body ?? body;
  if (own?.delayMs) await new Promise((resolve) => setTimeout(resolve, own.delayMs));
  return new Response(
    new ReadableStream({
      ...(byteStream ? { type: "bytes" } : {}),
      start(controller) {
        for (let at = 0; at < bytes.length; at += 1000) controller.enqueue(bytes.slice(at, at + 1000));
        controller.close();
      },
    }),
    { status },
  );
};

const toHex = (buffer) => Buffer.from(buffer).toString("hex");
const opener = new StreamOpener(sodium.libsodium);
const pool = new OpenerPool([localOpener(opener)]);

// A frame per file, as a zip would give: a head of k + 1 bytes and a tail of 8 + k bytes, all 0xAA.
const framesFor = (chosen) => chosen.map((_, k) => ({ head: new Uint8Array(k + 1).fill(0xaa), tail: new Uint8Array(8 + k).fill(0xaa) }));

function planFor(chosen) {
  return {
    path: "/api/v1/blobs/read",
    headers: {},
    body: new Uint8Array(0),
    files: chosen.map((file) => ({ ...file.entry(), ciphertextHash: file.hash })),
  };
}

async function read(chosen, { framed = true, extra = null, cut = 0, answer = 200, bytes = true, frames = null } = {}) {
  const plan = planFor(chosen);
  const sealed = concat(chosen.map((file) => file.sealed));
  body = extra === null ? sealed.subarray(0, sealed.length - cut) : concat([sealed, extra]);
  status = answer;
  byteStream = bytes;
  try {
    return outcome(plan, await readBatch(pool, plan, framed ? (frames ?? framesFor(chosen)) : null));
  } catch (error) {
    return failure(error);
  }
}

function outcome(plan, result) {
  return {
    ok: true,
    framed: result.framed,
    buffers: result.framed ? [result.buffer] : result.buffers,
    crc32s: result.framed ? result.crc32s : null,
    keysWiped: plan.files.every((file) => file.contentKey.every((byte) => byte === 0)),
  };
}

function failure(error) {
  return { ok: false, error: error instanceof BatchFailure ? `BatchFailure: ${error.message}` : String(error) };
}

/** A batch read through `through` (a pool), its answer its own: the sealed files, or `sealed`. */
async function readVia(through, chosen, { sealed = null, delayMs = 0 } = {}) {
  const plan = planFor(chosen);
  plan.body = new Uint8Array(1);
  answers.set(plan.body, { body: sealed ?? concat(chosen.map((file) => file.sealed)), delayMs });
  status = 200;
  byteStream = true;
  try {
    return outcome(plan, await readBatch(through, plan, framesFor(chosen)));
  } catch (error) {
    return failure(error);
  } finally {
    answers.delete(plan.body);
  }
}

/** A helper thread's stand-in: serveOpens on its own opener, across a MessageChannel. */
function helperOnChannel() {
  const channel = new MessageChannel();
  serveOpens(channel.port2, new StreamOpener(sodium.libsodium));
  channel.port2.start();
  const helper = helperOpener(channel.port1);
  channel.port1.start();
  const counted = { opened: 0, broken: false, open: (...args) => ((counted.opened += 1), helper.open(...args)) };
  return { counted, close: () => channel.port1.close() };
}

const results = {};
const shown = (r) => (r.ok ? { framed: r.framed, buffers: r.buffers.map(toHex), crc32s: r.crc32s, keysWiped: r.keysWiped } : r);
const firstFiles = files.concat(files.slice(0, 2));
const secondFiles = [...files].reverse();
const first = await read(firstFiles);
// A second, smaller batch is read into the first one's response buffer: the first batch's
// answers must not change.
const before = first.buffers.map(toHex);
const second = await read(secondFiles);
results.first = shown(first);
results.firstAfterSecond = first.buffers.map(toHex).every((text, index) => text === before[index]);
results.second = shown(second);
results.unframed = shown(await read(files.slice(0, 2), { framed: false }));
results.shortTail = shown(await read(files.slice(0, 2), { frames: [{ head: new Uint8Array(1), tail: new Uint8Array(8) }, { head: new Uint8Array(1), tail: new Uint8Array(7) }] }));
results.tooFewFrames = shown(await read(files.slice(0, 2), { frames: [{ head: new Uint8Array(1), tail: new Uint8Array(8) }] }));
results.longer = shown(await read(files, { extra: new Uint8Array([0]) }));
results.shorter = shown(await read(files, { cut: 1 }));
results.refused = shown(await read(files, { answer: 503 }));
results.notBytes = shown(await read(files, { bytes: false }));
results.notBytesLonger = shown(await read(files, { bytes: false, extra: new Uint8Array([0]) }));
// Four batches at once through this thread's opener and a helper's: each opener takes some,
// every answer is whole and in its own buffers.
const helper = helperOnChannel();
const local = { opened: 0, open: (...args) => ((local.opened += 1), localOpener(opener).open(...args)) };
const both = new OpenerPool([local, helper.counted]);
const batches = [firstFiles, secondFiles, files, files.slice(0, 3)];
const shared = await Promise.all(batches.map((chosen) => readVia(both, chosen)));
results.shared = {
  answers: shared.map(shown),
  expected: batches.map((chosen) => chosen.map((file) => file.plaintext)),
  local: local.opened,
  helper: helper.counted.opened,
};
// A file changed at rest, opened by the helper: the batch fails with the protocol's error name.
const onlyHelper = new OpenerPool([helper.counted]);
const tampered = concat(files.slice(0, 2).map((file) => file.sealed));
tampered[tampered.length - 1] ^= 1;
results.helperTampered = shown(await readVia(onlyHelper, files.slice(0, 2), { sealed: tampered }));
helper.close();
// A helper whose thread failed: its batch fails, and the pool lends it nothing more.
const listeners = {};
const dying = helperOpener({
  postMessage: () => setTimeout(() => listeners.error?.({}), 5),
  addEventListener: (type, listener) => {
    listeners[type] = listener;
  },
});
const afterFailure = new OpenerPool([dying, localOpener(opener)]);
results.helperFailed = shown(await readVia(afterFailure, files.slice(0, 2)));
results.afterHelperFailed = await Promise.all([readVia(afterFailure, files.slice(0, 2)), readVia(afterFailure, files.slice(1, 3))]).then((all) => all.map(shown));
results.helperBroken = dying.broken;
// Answers in the order asked: the first batch's body arrives after the second's, and still the
// one opener opens it first.
const order = [];
const single = new OpenerPool([localOpener(opener)]);
await Promise.all([
  readVia(single, files.slice(0, 3), { delayMs: 50 }).then(() => order.push("first")),
  readVia(single, files.slice(0, 1)).then(() => order.push("second")),
]);
results.order = order;
results.expected = {
  first: firstFiles.map((file) => file.plaintext),
  second: secondFiles.map((file) => file.plaintext),
  names: files.map((file) => file.name),
};
// Exit without waiting for the reader's timer that lets its spare buffers go.
process.stdout.write(JSON.stringify(results), () => process.exit(0));

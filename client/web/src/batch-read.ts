// The worker's own reader for a port's readMany (protocol.md §14.5): one fetch of the sealed
// files, each opened against its signed manifest entry (§7.6) straight into the answer's
// buffer. The Python core plans it (which files, their entries and content keys, the request);
// the bytes never pass through Python, which would copy each file several times and made the
// download of a study slower than the server serving it.
//
// Any failure rejects with BatchFailure and nothing is answered from here: the worker then asks
// the Python core, which reads again and says what failed in words the person can act on.

import { crc32 } from "./download/crc32";
import type { ZipFrame } from "./download/zip-writer";
import { openInstance, sha256, type SignedInstance, StreamError, type StreamOpener } from "./stream-open";

/** What StudyPorts.read_plan returns, converted to JavaScript. */
export interface BatchPlan {
  path: string;
  headers: Record<string, string>;
  body: Uint8Array<ArrayBuffer>;
  files: SignedInstance[];
}

export class BatchFailure extends Error {}

/**
 * A batch's plaintexts in the plan's order, each in a buffer of its own (transferable), or,
 * framed, all in one buffer between their frames, with each file's CRC-32.
 */
export type BatchRead = { framed: false; buffers: ArrayBuffer[] } | { framed: true; buffer: ArrayBuffer; crc32s: number[] };

/**
 * Read and open the plan's files. With `frames` (one per file), the answer is a run of zip
 * entries: each plaintext is opened straight into its place between its frame's head and tail,
 * and its CRC-32 computed right after, while the bytes are still in the cache. The download
 * page then passes one buffer per group to the service worker instead of three pieces per
 * file, and computes no CRC.
 */
export async function readBatch(opener: StreamOpener, plan: BatchPlan, frames: ZipFrame[] | null): Promise<BatchRead> {
  try {
    // A tail holds at least the descriptor's signature and CRC.
    if (frames !== null && (frames.length !== plan.files.length || frames.some((frame) => frame.tail.byteLength < 8))) {
      throw new BatchFailure("frames");
    }
    // As FetchTransport sends every API request: the session cookie, no redirect, no cache.
    const response = await fetch(plan.path, {
      method: "POST",
      headers: plan.headers,
      body: plan.body,
      credentials: "same-origin",
      redirect: "error",
      cache: "no-store",
    });
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new BatchFailure(`status ${response.status}`);
    }
    let sealedTotal = 0;
    for (const file of plan.files) sealedTotal += file.ciphertextSize;
    const sealed = await readExactly(response, sealedTotal);
    // Every file is hashed off this thread while the ones before it are decrypted.
    const parts: Uint8Array<ArrayBuffer>[] = [];
    let offset = 0;
    for (const file of plan.files) {
      parts.push(sealed.subarray(offset, offset + file.ciphertextSize));
      offset += file.ciphertextSize;
    }
    const hashes = parts.map((part) => sha256(part));
    for (const hash of hashes) hash.catch(() => undefined);
    const read: BatchRead = frames === null ? await openEach(opener, plan, parts, hashes) : await openFramed(opener, plan, parts, hashes, frames);
    // Every file is hashed (WebCrypto took its copy when asked) and decrypted: the next batch
    // may read into this buffer.
    spare = sealed.buffer;
    return read;
  } catch (error) {
    if (error instanceof BatchFailure) throw error;
    throw new BatchFailure(error instanceof StreamError ? error.kind : error instanceof Error ? error.name : "failed");
  } finally {
    for (const file of plan.files) file.contentKey.fill(0);
  }
}

async function openEach(opener: StreamOpener, plan: BatchPlan, parts: Uint8Array<ArrayBuffer>[], hashes: Promise<Uint8Array>[]): Promise<BatchRead> {
  const buffers: ArrayBuffer[] = [];
  for (const [index, file] of plan.files.entries()) {
    const plaintext = new Uint8Array(file.plaintextSize);
    await openInstance(opener, file, parts[index] as Uint8Array<ArrayBuffer>, hashes[index] as Promise<Uint8Array>, plaintext);
    buffers.push(plaintext.buffer);
  }
  return { framed: false, buffers };
}

async function openFramed(
  opener: StreamOpener,
  plan: BatchPlan,
  parts: Uint8Array<ArrayBuffer>[],
  hashes: Promise<Uint8Array>[],
  frames: ZipFrame[],
): Promise<BatchRead> {
  let total = 0;
  for (const [index, file] of plan.files.entries()) {
    const frame = frames[index] as ZipFrame;
    total += frame.head.byteLength + file.plaintextSize + frame.tail.byteLength;
  }
  const run = new Uint8Array(total);
  const view = new DataView(run.buffer);
  const crc32s: number[] = [];
  let at = 0;
  for (const [index, file] of plan.files.entries()) {
    const { head, tail } = frames[index] as ZipFrame;
    run.set(head, at);
    at += head.byteLength;
    const plaintext = run.subarray(at, at + file.plaintextSize);
    await openInstance(opener, file, parts[index] as Uint8Array<ArrayBuffer>, hashes[index] as Promise<Uint8Array>, plaintext);
    const crc = crc32(plaintext);
    crc32s.push(crc);
    at += file.plaintextSize;
    run.set(tail, at);
    view.setUint32(at + 4, crc, true);
    at += tail.byteLength;
  }
  return { framed: true, buffer: run.buffer, crc32s };
}

// The last batch's response buffer, read into again by the next batch. A new buffer of some
// megabytes is new memory from the system, whose first write costs a page fault every 4 KiB:
// reading each batch into a fresh one (Response.arrayBuffer) took about a fifth of the
// worker's time in a download. Kept only between batches (at most readMany's 16 MiB).
let spare: ArrayBuffer | null = null;

/** The response body, which must be exactly `length` bytes, in the spare buffer if it fits. */
async function readExactly(response: Response, length: number): Promise<Uint8Array<ArrayBuffer>> {
  const body = response.body;
  if (body === null) throw new BatchFailure("length");
  let reader: ReadableStreamBYOBReader;
  try {
    reader = body.getReader({ mode: "byob" });
  } catch {
    // A browser whose fetch bodies are not byte streams: the whole answer in new memory.
    const whole = new Uint8Array(await response.arrayBuffer());
    if (whole.byteLength !== length) throw new BatchFailure("length");
    return whole;
  }
  let buffer = spare !== null && spare.byteLength >= length ? spare : new ArrayBuffer(length);
  spare = null;
  try {
    let filled = 0;
    while (filled < length) {
      // Each read hands the buffer to the stream and back (transferred, not copied).
      const { done, value } = await reader.read(new Uint8Array(buffer, filled, length - filled));
      if (value === undefined) throw new BatchFailure("length");
      buffer = value.buffer;
      filled += value.byteLength;
      if (done) break;
    }
    if (filled !== length) throw new BatchFailure("length");
    // Nothing may follow the files the plan asked for.
    const after = await reader.read(new Uint8Array(1));
    if (!after.done) throw new BatchFailure("length");
    return new Uint8Array(buffer, 0, length);
  } finally {
    reader.releaseLock();
    body.cancel().catch(() => undefined);
  }
}

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

/** Any error of a batch as a BatchFailure whose message is a reason, never data. */
export function batchFailure(error: unknown): BatchFailure {
  if (error instanceof BatchFailure) return error;
  return new BatchFailure(error instanceof StreamError ? error.kind : error instanceof Error ? error.name : "failed");
}

/**
 * A batch's plaintexts in the plan's order, each in a buffer of its own (transferable), or,
 * framed, all in one buffer between their frames, with each file's CRC-32.
 */
export type BatchRead = { framed: false; buffers: ArrayBuffer[] } | { framed: true; buffer: ArrayBuffer; crc32s: number[] };

/**
 * Opens a batch whose sealed files arrived: hashes, opens and (framed) computes the CRCs of
 * every file, as `openBatch` does. `sealed` is given back once nothing reads it any more, for
 * the next batch's response to be read into.
 */
export interface BatchOpener {
  /** Set once this opener can open nothing more (a helper thread that failed). */
  broken?: boolean;
  open(files: SignedInstance[], sealed: Uint8Array<ArrayBuffer>, frames: ZipFrame[] | null): Promise<{ read: BatchRead; sealed: ArrayBuffer }>;
}

/** A BatchOpener on this thread. */
export function localOpener(opener: StreamOpener): BatchOpener {
  return {
    open: async (files, sealed, frames) => ({ read: await openBatch(opener, files, sealed, frames), sealed: sealed.buffer }),
  };
}

/**
 * The openers a worker has (its own thread's, and a helper thread's where it has one), lent to
 * one batch at a time in the order the batches were asked for: the answer asked for first is
 * the one its reader waits for.
 */
export class OpenerPool {
  private readonly idle: BatchOpener[];
  private readonly waiting: ((opener: BatchOpener) => void)[] = [];

  constructor(openers: BatchOpener[]) {
    this.idle = [...openers];
  }

  /** Take a place in line now; the promise gives an opener when it is this batch's turn. */
  acquire(): Promise<BatchOpener> {
    const opener = this.waiting.length === 0 ? this.idle.shift() : undefined;
    if (opener !== undefined) return Promise.resolve(opener);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  release(opener: BatchOpener): void {
    if (opener.broken === true) return;
    const next = this.waiting.shift();
    if (next === undefined) this.idle.push(opener);
    else next(opener);
  }

  /**
   * Another opener for the batches to come (a helper thread that has started), lent before
   * this thread's own: the worker's thread also plans and fetches the batches.
   */
  add(opener: BatchOpener): void {
    const next = this.waiting.shift();
    if (next === undefined) this.idle.unshift(opener);
    else next(opener);
  }
}

/**
 * Read and open the plan's files. With `frames` (one per file), the answer is a run of zip
 * entries: each plaintext is opened straight into its place between its frame's head and tail,
 * and its CRC-32 computed right after, while the bytes are still in the cache. The download
 * page then passes one buffer per group to the service worker instead of three pieces per
 * file, and computes no CRC.
 */
export async function readBatch(pool: OpenerPool, plan: BatchPlan, frames: ZipFrame[] | null): Promise<BatchRead> {
  // The place in line is taken now, in the order the batches were asked for; this batch's
  // fetch runs while the batches before it are opened.
  const turn = pool.acquire();
  let opener: BatchOpener | null = null;
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
    opener = await turn;
    const { read, sealed: given } = await opener.open(plan.files, sealed, frames);
    // Every file is hashed and opened: the next batch may read into this buffer.
    keepSpare(given);
    return read;
  } catch (error) {
    throw batchFailure(error);
  } finally {
    // A batch that failed before its turn still gives its turn on, once it comes.
    if (opener !== null) pool.release(opener);
    else void turn.then((unused) => pool.release(unused));
    for (const file of plan.files) file.contentKey.fill(0);
  }
}

/**
 * Open a batch's sealed files (one after the other in `sealed`) against their entries: each
 * hashed by WebCrypto, off this thread, while the ones before it are decrypted.
 */
export async function openBatch(
  opener: StreamOpener,
  files: SignedInstance[],
  sealed: Uint8Array<ArrayBuffer>,
  frames: ZipFrame[] | null,
): Promise<BatchRead> {
  const parts: Uint8Array<ArrayBuffer>[] = [];
  let offset = 0;
  for (const file of files) {
    parts.push(sealed.subarray(offset, offset + file.ciphertextSize));
    offset += file.ciphertextSize;
  }
  if (offset !== sealed.byteLength || (frames !== null && frames.length !== files.length)) throw new BatchFailure("length");
  const hashes = parts.map((part) => sha256(part));
  for (const hash of hashes) hash.catch(() => undefined);
  return frames === null ? await openEach(opener, files, parts, hashes) : await openFramed(opener, files, parts, hashes, frames);
}

/**
 * Let the thread's event loop run between two files: opening a batch takes tens of
 * milliseconds, and meanwhile the next batch's request must be planned and its fetch read, or
 * the worker waits for the network after every batch (about a third of a download's time).
 * A resolved promise would not do (its continuation runs before any other task), nor would
 * setTimeout (clamped to 4 ms when nested).
 */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}

async function openEach(opener: StreamOpener, files: SignedInstance[], parts: Uint8Array<ArrayBuffer>[], hashes: Promise<Uint8Array>[]): Promise<BatchRead> {
  const buffers: ArrayBuffer[] = [];
  for (const [index, file] of files.entries()) {
    if (index > 0) await yieldToEventLoop();
    const plaintext = new Uint8Array(file.plaintextSize);
    await openInstance(opener, file, parts[index] as Uint8Array<ArrayBuffer>, hashes[index] as Promise<Uint8Array>, plaintext);
    buffers.push(plaintext.buffer);
  }
  return { framed: false, buffers };
}

async function openFramed(
  opener: StreamOpener,
  files: SignedInstance[],
  parts: Uint8Array<ArrayBuffer>[],
  hashes: Promise<Uint8Array>[],
  frames: ZipFrame[],
): Promise<BatchRead> {
  let total = 0;
  for (const [index, file] of files.entries()) {
    const frame = frames[index] as ZipFrame;
    total += frame.head.byteLength + file.plaintextSize + frame.tail.byteLength;
  }
  const run = new Uint8Array(total);
  const view = new DataView(run.buffer);
  const crc32s: number[] = [];
  let at = 0;
  for (const [index, file] of files.entries()) {
    if (index > 0) await yieldToEventLoop();
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

// Response buffers of finished batches, read into again by the next ones. A new buffer of
// some megabytes is new memory from the system, whose first write costs a page fault every
// 4 KiB: reading each batch into a fresh one (Response.arrayBuffer) took about a fifth of the
// worker's time in a download. One per batch in flight (two being opened, one being read), of
// at most readMany's 16 MiB each, and let go once reads stop.
const spares: ArrayBuffer[] = [];
const SPARES = 3;
const SPARES_KEPT_MS = 10_000;
let sparesTimer: ReturnType<typeof setTimeout> | undefined;

function keepSpare(buffer: ArrayBuffer): void {
  // A buffer transferred away and not given back is detached (empty).
  if (buffer.byteLength === 0) return;
  spares.push(buffer);
  spares.sort((a, b) => b.byteLength - a.byteLength);
  spares.length = Math.min(spares.length, SPARES);
  clearTimeout(sparesTimer);
  sparesTimer = setTimeout(() => {
    spares.length = 0;
  }, SPARES_KEPT_MS);
}

/** The smallest spare buffer that holds `length` bytes, or a new one. */
function takeSpare(length: number): ArrayBuffer {
  for (let index = spares.length - 1; index >= 0; index -= 1) {
    if ((spares[index] as ArrayBuffer).byteLength >= length) return spares.splice(index, 1)[0] as ArrayBuffer;
  }
  return new ArrayBuffer(length);
}

/** The response body, which must be exactly `length` bytes, in a spare buffer if one fits. */
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
  let buffer = takeSpare(length);
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

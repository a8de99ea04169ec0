// The worker's helper thread for opening batches (protocol.md §14.5): while the worker opens
// one batch of a download, the helper opens the next, so a download is not held to what one
// thread decrypts. Both ends of its messages are here: `helperOpener` in the worker,
// `serveOpens` in the helper (batch-helper-worker.ts). The helper holds no key between
// batches: each request carries its batch's content keys, which it wipes once the batch is open.

import { type BatchOpener, BatchFailure, batchFailure, type BatchRead, openBatch } from "./batch-read";
import type { ZipFrame } from "./download/zip-writer";
import { KEY_BYTES, type SignedInstance, type StreamOpener } from "./stream-open";

/** A batch to open: its files' entries, their keys (32 bytes each, in order), the bytes. */
export interface OpenRequest {
  id: number;
  files: Omit<SignedInstance, "contentKey">[];
  keys: ArrayBuffer;
  sealed: ArrayBuffer;
  length: number;
  frames: ZipFrame[] | null;
}

/** The batch opened, or why not (an error's name, never data); `sealed` comes back either way. */
export type OpenAnswer = { id: number; ok: true; read: BatchRead; sealed: ArrayBuffer } | { id: number; ok: false; reason: string; sealed: ArrayBuffer };

/** What both ends post on: a worker, its global scope, or a MessagePort. */
export interface Endpoint {
  postMessage(message: unknown, transfer: Transferable[]): void;
  addEventListener(type: "message" | "messageerror" | "error", listener: (event: MessageEvent) => void): void;
}

/**
 * The worker's end: a BatchOpener whose batches the helper opens. A helper that fails (its
 * script stopped, a message it could not read) fails the batches it holds, which the Python
 * core then reads again, and is lent no more batches.
 */
export function helperOpener(helper: Endpoint): BatchOpener {
  let next = 0;
  const pending = new Map<number, (answer: OpenAnswer | null) => void>();
  const opener: BatchOpener = {
    broken: false,
    async open(files, sealed, frames) {
      if (opener.broken) throw new BatchFailure("helper");
      if (sealed.byteOffset !== 0) throw new BatchFailure("length");
      const id = (next += 1);
      // The keys travel in one buffer that is transferred, so that no copy of them stays here.
      const keys = new Uint8Array(files.length * KEY_BYTES);
      for (const [index, file] of files.entries()) keys.set(file.contentKey, index * KEY_BYTES);
      const request: OpenRequest = {
        id,
        files: files.map(({ fileId, ciphertextSize, plaintextSize, ciphertextHash }) => ({ fileId, ciphertextSize, plaintextSize, ciphertextHash })),
        keys: keys.buffer,
        sealed: sealed.buffer,
        length: sealed.byteLength,
        frames,
      };
      const answered = new Promise<OpenAnswer | null>((resolve) => pending.set(id, resolve));
      try {
        helper.postMessage(request, [keys.buffer, sealed.buffer]);
      } catch (error) {
        pending.delete(id);
        keys.fill(0);
        throw error;
      }
      const answer = await answered;
      if (answer === null) throw new BatchFailure("helper");
      if (!answer.ok) throw new BatchFailure(answer.reason);
      return { read: answer.read, sealed: answer.sealed };
    },
  };
  const fail = (): void => {
    opener.broken = true;
    for (const resolve of pending.values()) resolve(null);
    pending.clear();
  };
  helper.addEventListener("error", fail);
  helper.addEventListener("messageerror", fail);
  helper.addEventListener("message", (event: MessageEvent<OpenAnswer>) => {
    const answer = event.data;
    pending.get(answer.id)?.(answer);
    pending.delete(answer.id);
  });
  return opener;
}

/** The helper's end: open each request's batch with `opener` and answer it on `endpoint`. */
export function serveOpens(endpoint: Endpoint, opener: StreamOpener): void {
  endpoint.addEventListener("message", (event: MessageEvent<OpenRequest>) => {
    const request = event.data;
    void answer(opener, request).then(({ message, transfer }) => endpoint.postMessage(message, transfer));
  });
}

async function answer(opener: StreamOpener, request: OpenRequest): Promise<{ message: OpenAnswer; transfer: Transferable[] }> {
  const keys = new Uint8Array(request.keys);
  const files: SignedInstance[] = request.files.map((file, index) => ({
    ...file,
    contentKey: keys.subarray(index * KEY_BYTES, (index + 1) * KEY_BYTES),
  }));
  try {
    if (keys.byteLength !== files.length * KEY_BYTES) throw new BatchFailure("keys");
    const read = await openBatch(opener, files, new Uint8Array(request.sealed, 0, request.length), request.frames);
    const buffers = read.framed ? [read.buffer] : read.buffers;
    return { message: { id: request.id, ok: true, read, sealed: request.sealed }, transfer: [...buffers, request.sealed] };
  } catch (error) {
    return { message: { id: request.id, ok: false, reason: batchFailure(error).message, sealed: request.sealed }, transfer: [request.sealed] };
  } finally {
    keys.fill(0);
  }
}

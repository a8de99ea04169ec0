// The worker's own reader for a port's readMany (protocol.md §14.5): one fetch of the sealed
// files, each opened against its signed manifest entry (§7.6) straight into the answer's
// buffer. The Python core plans it (which files, their entries and content keys, the request);
// the bytes never pass through Python, which would copy each file several times and made the
// download of a study slower than the server serving it.
//
// Any failure rejects with BatchFailure and nothing is answered from here: the worker then asks
// the Python core, which reads again and says what failed in words the person can act on.

import { openInstance, sha256, type SignedInstance, StreamError, type StreamOpener } from "./stream-open";

/** What StudyPorts.read_plan returns, converted to JavaScript. */
export interface BatchPlan {
  path: string;
  headers: Record<string, string>;
  body: Uint8Array<ArrayBuffer>;
  files: SignedInstance[];
}

export class BatchFailure extends Error {}

/** The plaintexts of the plan's files in its order, each in a buffer of its own (transferable). */
export async function readBatch(opener: StreamOpener, plan: BatchPlan): Promise<ArrayBuffer[]> {
  try {
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
    const sealed = new Uint8Array(await response.arrayBuffer());
    let sealedTotal = 0;
    for (const file of plan.files) sealedTotal += file.ciphertextSize;
    if (sealed.byteLength !== sealedTotal) throw new BatchFailure("length");
    // Every file is hashed off this thread while the ones before it are decrypted.
    const parts: Uint8Array<ArrayBuffer>[] = [];
    let offset = 0;
    for (const file of plan.files) {
      parts.push(sealed.subarray(offset, offset + file.ciphertextSize));
      offset += file.ciphertextSize;
    }
    const hashes = parts.map((part) => sha256(part));
    for (const hash of hashes) hash.catch(() => undefined);
    const out: ArrayBuffer[] = [];
    for (const [index, file] of plan.files.entries()) {
      const part = parts[index] as Uint8Array<ArrayBuffer>;
      const hash = hashes[index] as Promise<Uint8Array>;
      const plaintext = new Uint8Array(file.plaintextSize);
      await openInstance(opener, file, part, hash, plaintext);
      out.push(plaintext.buffer);
    }
    return out;
  } catch (error) {
    if (error instanceof BatchFailure) throw error;
    throw new BatchFailure(error instanceof StreamError ? error.kind : error instanceof Error ? error.name : "failed");
  } finally {
    for (const file of plan.files) file.contentKey.fill(0);
  }
}

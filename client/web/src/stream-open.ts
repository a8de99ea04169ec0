// Opening a STREAM (protocol.md §7.5) and an instance against its signed manifest entry (§7.6),
// in the worker, on libsodium.js's raw functions. The Python core (securepacs.crypto.stream)
// is the reference; this is the same procedure without the copies between Python and
// JavaScript, for the download window's reads (§14.5). Both pass the shared vectors
// (tests/web/stream_vectors.mjs runs them here).

/** The raw libsodium.js module: what this file calls, and no more. */
export interface RawSodium {
  HEAPU8: Uint8Array;
  _malloc(size: number): number;
  _free(address: number): void;
  // (m, nsec, c, clen_lo, clen_hi, mac, ad, adlen_lo, adlen_hi, npub, k): 64-bit lengths are
  // passed as two 32-bit halves.
  _crypto_aead_chacha20poly1305_ietf_decrypt_detached(
    m: number,
    nsec: number,
    c: number,
    clenLow: number,
    clenHigh: number,
    mac: number,
    ad: number,
    adlenLow: number,
    adlenHigh: number,
    npub: number,
    k: number,
  ): number;
}

export type StreamErrorKind = "AuthenticationFailed" | "TruncatedStream" | "MalformedEnvelope" | "UnsupportedVersion";

/** A stream or instance that must not be used; `kind` is the protocol's error name (§2.5). */
export class StreamError extends Error {
  constructor(readonly kind: StreamErrorKind) {
    super(kind);
    this.name = "StreamError";
  }
}

/** What the signed manifest entry says of an instance (§6.4), and its content key (§7.1). */
export interface SignedInstance {
  fileId: Uint8Array;
  contentKey: Uint8Array;
  ciphertextSize: number;
  plaintextSize: number;
  ciphertextHash: Uint8Array;
}

export const HEADER_BYTES = 24;
export const TAG_BYTES = 16;
export const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const FILE_ID_BYTES = 16;
const MAGIC = [0x53, 0x50, 0x43, 0x53];
const CHUNK_LOG2_MIN = 12;
const CHUNK_LOG2_MAX = 24;
const MAX_CHUNKS = 2 ** 32;

/**
 * One scratch region of libsodium's heap for key, nonce, header and one sealed chunk, reused
 * by every call and wiped of the key after each stream. The worker runs one call at a time.
 */
export class StreamOpener {
  private base = 0;
  private size = 0;

  constructor(private readonly sodium: RawSodium) {}

  private region(chunkBytes: number): number {
    const needed = KEY_BYTES + NONCE_BYTES + HEADER_BYTES + chunkBytes;
    if (needed > this.size) {
      if (this.base !== 0) this.sodium._free(this.base);
      this.base = 0;
      this.size = 0;
      const base = this.sodium._malloc(needed);
      if (base === 0) throw new Error("libsodium.js could not allocate its scratch buffer.");
      this.base = base;
      this.size = needed;
    }
    return this.base;
  }

  /**
   * Open a whole sealed stream (header first) by §7.5, with the file id the manifest expects,
   * and return the plaintext's length. The plaintext goes to `out` as far as it fits: a stream
   * longer than the caller expected is still verified to its end, so that it fails as §7.5
   * says. On an error, what `out` holds is garbage the caller discards.
   */
  open(contentKey: Uint8Array, fileId: Uint8Array, sealed: Uint8Array, out: Uint8Array): number {
    if (contentKey.byteLength !== KEY_BYTES || fileId.byteLength !== FILE_ID_BYTES) {
      throw new RangeError("A content key is 32 bytes and a file id 16.");
    }
    if (sealed.byteLength < HEADER_BYTES) throw new StreamError("TruncatedStream");
    const header = sealed.subarray(0, HEADER_BYTES);
    if (MAGIC.some((byte, index) => header[index] !== byte)) throw new StreamError("MalformedEnvelope");
    if (header[4] !== 1 || header[5] !== 1) throw new StreamError("UnsupportedVersion");
    const chunkLog2 = header[6] ?? 0;
    if (chunkLog2 < CHUNK_LOG2_MIN || chunkLog2 > CHUNK_LOG2_MAX || header[7] !== 0) {
      throw new StreamError("MalformedEnvelope");
    }
    if (fileId.some((byte, index) => header[8 + index] !== byte)) throw new StreamError("AuthenticationFailed");
    const chunk = 2 ** chunkLog2;
    const sealedChunk = chunk + TAG_BYTES;
    const base = this.region(sealedChunk);
    const heap = (): Uint8Array => this.sodium.HEAPU8; // a malloc elsewhere may replace the view
    const key = base;
    const nonce = key + KEY_BYTES;
    const ad = nonce + NONCE_BYTES;
    const data = ad + HEADER_BYTES;
    try {
      heap().set(contentKey, key);
      heap().set(header, ad);
      let position = HEADER_BYTES;
      let written = 0;
      // §7.5's sequential reader with the whole input at hand: the chunk that reaches the end
      // of the input is the final one, and chunks are checked in order.
      for (let index = 0; ; index += 1) {
        if (index >= MAX_CHUNKS) throw new StreamError("TruncatedStream");
        const remaining = sealed.byteLength - position;
        const last = remaining <= sealedChunk;
        const length = last ? remaining : sealedChunk;
        // A final chunk without a tag, or an empty one after chunk 0, was cut short (§7.3).
        if (last && (length < TAG_BYTES || (index > 0 && length === TAG_BYTES))) throw new StreamError("TruncatedStream");
        const plain = length - TAG_BYTES;
        heap().set(sealed.subarray(position, position + length), data);
        if (!this.decrypt(index, last, plain, key, nonce, ad, data)) {
          if (last && length === sealedChunk) {
            // A full chunk that opens as a middle chunk: the stream was cut after it.
            heap().set(sealed.subarray(position, position + length), data);
            if (this.decrypt(index, false, plain, key, nonce, ad, data)) throw new StreamError("TruncatedStream");
          }
          throw new StreamError("AuthenticationFailed");
        }
        if (written + plain <= out.byteLength) out.set(heap().subarray(data, data + plain), written);
        written += plain;
        position += length;
        if (last) break;
      }
      return written;
    } finally {
      heap().fill(0, base, data + sealedChunk);
    }
  }

  private decrypt(index: number, last: boolean, plain: number, key: number, nonce: number, ad: number, data: number): boolean {
    // nonce = BE(index, 11) || last; index < 2^32 (plaintextLength), so bytes 0..6 stay 0.
    const heap = this.sodium.HEAPU8;
    heap.fill(0, nonce, nonce + NONCE_BYTES);
    heap[nonce + 7] = (index >>> 24) & 0xff;
    heap[nonce + 8] = (index >>> 16) & 0xff;
    heap[nonce + 9] = (index >>> 8) & 0xff;
    heap[nonce + 10] = index & 0xff;
    heap[nonce + 11] = last ? 1 : 0;
    const status = this.sodium._crypto_aead_chacha20poly1305_ietf_decrypt_detached(
      data, 0, data, plain, 0, data + plain, ad, HEADER_BYTES, 0, nonce, key,
    );
    return status === 0;
  }
}

function equalInConstantTime(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  let difference = 0;
  for (let index = 0; index < a.byteLength; index += 1) difference |= (a[index] ?? 0) ^ (b[index] ?? 0);
  return difference === 0;
}

/** SHA-256 by WebCrypto, which hashes off the calling thread. */
export async function sha256(data: Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data));
}

/**
 * Open an instance against its signed manifest entry (§7.6) into `out`, which holds exactly
 * `entry.plaintextSize` bytes: every chunk by §7.5, then the sealed size, the plaintext size
 * and the ciphertext's SHA-256 against the entry. `hashed` is the SHA-256 of exactly `sealed`,
 * computed while this decrypts. Only a call that resolves leaves `out` usable.
 */
export async function openInstance(
  opener: StreamOpener,
  entry: SignedInstance,
  sealed: Uint8Array,
  hashed: Promise<Uint8Array>,
  out: Uint8Array,
): Promise<void> {
  if (out.byteLength !== entry.plaintextSize) throw new RangeError("The output must hold exactly the signed plaintext size.");
  const released = opener.open(entry.contentKey, entry.fileId, sealed, out);
  const hash = await hashed;
  if (
    sealed.byteLength !== entry.ciphertextSize ||
    released !== entry.plaintextSize ||
    !equalInConstantTime(hash, entry.ciphertextHash)
  ) {
    throw new StreamError("AuthenticationFailed");
  }
}

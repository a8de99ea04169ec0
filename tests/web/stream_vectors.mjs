// The shared STREAM vectors (tests/vectors/stream) against the web client's own opener,
// client/web/src/stream-open.ts: every "stream.open" and "stream.open_instance" vector, the
// ones the worker's reader relies on. The same function runs under Node (run_node.mjs) and in
// Chromium (test_stream_open.py loads this file into a page).
//
// runVectors(module, sodium, vectors) -> [{name, ok, detail}]; `module` is stream-open.ts
// compiled to JavaScript, `sodium` libsodium-wrappers-sumo once ready.

const CONTENT_KEY_LABEL = "securepacs/v1/content-key";

export function hex(text) {
  const bytes = new Uint8Array(text.length / 2);
  for (let i = 0; i < bytes.length; i += 1) bytes[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// protocol.md §3.2: derive(key, label, context) = BLAKE2b-256(key, u8(len(label)) || label || context)
export function contentKey(sodium, studyKey, fileId) {
  const label = new TextEncoder().encode(CONTENT_KEY_LABEL);
  const message = new Uint8Array(1 + label.length + fileId.length);
  message[0] = label.length;
  message.set(label, 1);
  message.set(fileId, 1 + label.length);
  return sodium.crypto_generichash(32, message, studyKey);
}

async function sha256(data) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data));
}

async function outcome(module, opener, sodium, vector) {
  const inputs = vector.inputs;
  const studyKey = hex(inputs.study_key);
  const sealed = hex(inputs.sealed);
  if (vector.op === "stream.open") {
    const fileId = hex(inputs.file_id);
    // Room for any plaintext the stream could hold.
    const out = new Uint8Array(sealed.length);
    const length = opener.open(contentKey(sodium, studyKey, fileId), fileId, sealed, out);
    return toHex(out.subarray(0, length));
  }
  const entry = inputs.entry;
  const signed = {
    fileId: hex(entry.file_id),
    contentKey: contentKey(sodium, studyKey, hex(entry.file_id)),
    ciphertextSize: entry.ciphertext_size,
    plaintextSize: entry.plaintext_size,
    ciphertextHash: hex(entry.ciphertext_hash),
  };
  const out = new Uint8Array(entry.plaintext_size);
  await module.openInstance(opener, signed, sealed, sha256(sealed), out);
  return toHex(out);
}

export async function runVectors(module, sodium, vectors) {
  const opener = new module.StreamOpener(sodium.libsodium);
  const results = [];
  for (const vector of vectors) {
    if (vector.op !== "stream.open" && vector.op !== "stream.open_instance") continue;
    let got;
    try {
      got = { ok: await outcome(module, opener, sodium, vector) };
    } catch (error) {
      got = { error: error instanceof module.StreamError ? error.kind : `${error?.name}: ${error?.message}` };
    }
    const expected = vector.expect === "ok" ? { ok: vector.outputs.plaintext } : { error: vector.expect };
    const passed = JSON.stringify(got) === JSON.stringify(expected);
    results.push({ name: vector.name, ok: passed, detail: passed ? "" : `expected ${JSON.stringify(expected).slice(0, 80)}, got ${JSON.stringify(got).slice(0, 80)}` });
  }
  return results;
}

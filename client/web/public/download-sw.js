// The download service worker (protocol.md §14.5), registered by the download page with scope
// /download/. It turns the page's zip stream into a file download, so that a study of any size
// goes to disk as it is decrypted and is never held whole in memory.
//
// The page registers a download here under a random token, with a MessagePort that gives the
// zip's pieces when asked (their buffers transferred, not copied), then navigates a hidden iframe
// to /download/<token>. This worker answers that navigation with the pieces as an attachment,
// and the browser's download manager writes them to disk as the page produces them, pulling no
// faster than the disk takes them. The request never reaches the server; had this worker not been
// active, the server would have seen only a random token that means nothing to it, never the
// file name (which can name the patient).
//
// Plain JavaScript, copied to dist/ as it is: a service worker's URL must not change between
// releases, so it cannot carry a bundler's content hash.

"use strict";

/** token -> {stream, disposition, length, port}; each token answers exactly one request. */
const pending = new Map();

// Pieces asked for ahead of the browser's download, so that the page prepares the next while
// the browser writes these (the page answers a pull with about 4 MiB).
const AHEAD_BYTES = 8 * 1024 * 1024;

/**
 * The page's pieces as a stream: each pull asks the page ({kind: "pull"}) and enqueues what it
 * answers ({kind: "pieces", pieces, end}); {kind: "failed"}, or the page gone, fails the stream,
 * and with it the browser's download. Cancelling tells the page ({kind: "cancel"}).
 */
function piecesStream(port) {
  let answer = null;
  const settle = (data) => {
    const waiting = answer;
    answer = null;
    if (waiting !== null) waiting(data);
  };
  port.addEventListener("message", (event) => settle(event.data));
  // Where the browser reports that the page's end is gone (closed or crashed).
  port.addEventListener("close", () => settle({ kind: "failed" }));
  port.start();
  return new ReadableStream(
    {
      pull(controller) {
        return new Promise((resolve) => {
          answer = (data) => {
            if (data !== null && typeof data === "object" && data.kind === "pieces" && Array.isArray(data.pieces)) {
              for (const piece of data.pieces) if (piece instanceof Uint8Array) controller.enqueue(piece);
              if (data.end === true) {
                controller.close();
                port.close();
              }
            } else {
              controller.error(new Error("The download page stopped the file."));
              port.close();
            }
            resolve();
          };
          port.postMessage({ kind: "pull" });
        });
      },
      cancel() {
        port.postMessage({ kind: "cancel" });
        port.close();
      },
    },
    new ByteLengthQueuingStrategy({ highWaterMark: AHEAD_BYTES }),
  );
}

// A stream nobody asked for (the page closed before its iframe loaded) is dropped after this.
const UNCLAIMED_MS = 60_000;
const TOKEN = /^\/download\/([0-9a-f]{32})\/?$/;

// Without this, a new release would wait until every old download iframe had gone; the page
// never depends on the version it registered, only on the message format below.
self.addEventListener("install", () => {
  self.skipWaiting();
});

self.addEventListener("message", (event) => {
  const data = event.data;
  if (event.origin !== self.location.origin || data === null || typeof data !== "object") return;
  // The page pings while a download runs: each message restarts the idle timer after which a
  // browser stops a service worker, and with it the stream it is answering.
  if (data.kind === "securepacs-ping") return;
  if (data.kind !== "securepacs-download") return;
  const { token, pieces, disposition, length, port } = data;
  if (
    typeof token !== "string" ||
    !/^[0-9a-f]{32}$/.test(token) ||
    !(pieces instanceof MessagePort) ||
    typeof disposition !== "string" ||
    !(length === null || (Number.isSafeInteger(length) && length >= 0)) ||
    !(port instanceof MessagePort)
  ) {
    return;
  }
  pending.set(token, { stream: piecesStream(pieces), disposition, length, port });
  setTimeout(() => {
    const unclaimed = pending.get(token);
    if (unclaimed === undefined) return;
    pending.delete(token);
    unclaimed.stream.cancel().catch(() => undefined);
  }, UNCLAIMED_MS);
  port.postMessage({ kind: "ready" });
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (url.origin !== self.location.origin || !url.pathname.startsWith("/download/")) return;
  const match = TOKEN.exec(url.pathname);
  const entry = match === null ? undefined : pending.get(match[1]);
  if (entry === undefined || event.request.method !== "GET") {
    event.respondWith(expired());
    return;
  }
  pending.delete(match[1]);
  const headers = {
    "Content-Type": "application/zip",
    "Content-Disposition": entry.disposition,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
  };
  // With the exact length the browser shows how much is left, and it fails a download that
  // ends early instead of keeping a truncated zip.
  if (entry.length !== null) headers["Content-Length"] = String(entry.length);
  entry.port.postMessage({ kind: "started" });
  // Once the page's stream has ended here, the rest of the file is in this worker: the page
  // may close without cutting the download short, and it tells the person so.
  const body = entry.stream.pipeThrough(
    new TransformStream({
      flush() {
        entry.port.postMessage({ kind: "finished" });
      },
    }),
  );
  event.respondWith(new Response(body, { headers }));
});

// A token is used once and lives only in this worker's memory: a download restarted from the
// browser's download list, or after the browser stopped this worker, lands here.
function expired() {
  const body =
    "<!doctype html><meta charset=utf-8><title>SecurePACS download</title>" +
    "<h1>This download is no longer available</h1>" +
    "<p>SecurePACS downloads are written by the download page while it stays open. " +
    "Open the study's download again from the Studies tab of SecurePACS and select Start download.</p>";
  return new Response(body, {
    status: 404,
    headers: {
      "Content-Type": "text/html; charset=utf-8",
      "Content-Security-Policy": "default-src 'none'",
      "Cache-Control": "no-store",
    },
  });
}

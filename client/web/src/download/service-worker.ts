// The page's end of /download-sw.js: it feeds a stream to the service worker, which answers a
// hidden iframe's navigation with it, so the browser saves the stream to disk as it is produced.
//
// The stream's pieces cross through a MessagePort, transferred rather than copied: a stream
// transferred whole would copy every piece on its way between the threads, the whole study once
// more. The service worker asks for the next pieces when the browser wants more.

const SCRIPT_URL = "/download-sw.js";
// The worker's script sits at the root so that this scope is allowed; the download page itself
// (/download) is outside it and never controlled.
const SCOPE = "/download/";
// The worker answers at once; a silent worker means it was stopped or replaced meanwhile.
const READY_TIMEOUT_MS = 10_000;
// From the iframe's navigation to the worker seeing the request: the browser may first ask the
// person whether this site may download files.
const STARTED_TIMEOUT_MS = 30_000;
const PING_INTERVAL_MS = 10_000;
// From the page's last byte to the worker having it: one hop between threads.
const DELIVERED_TIMEOUT_MS = 10_000;

export class SaveFailure extends Error {}

// What one answer to the service worker's "pull" carries at least (unless the stream ends).
const BATCH_BYTES = 4 * 1024 * 1024;

/** A piece whose buffer can be transferred: the piece itself if it spans its whole buffer. */
function transferable(piece: Uint8Array): Uint8Array<ArrayBuffer> {
  const whole = piece.byteOffset === 0 && piece.byteLength === piece.buffer.byteLength && piece.buffer instanceof ArrayBuffer;
  return whole ? (piece as Uint8Array<ArrayBuffer>) : piece.slice();
}

/**
 * Answer the service worker's pulls on `port` from `stream`: each "pull" gets
 * `{kind: "pieces", pieces, end}` with at least BATCH_BYTES (or the rest), their buffers
 * transferred, or `{kind: "failed"}` if the stream fails; "cancel" cancels the stream.
 */
function feed(stream: ReadableStream<Uint8Array>, port: MessagePort): void {
  const reader = stream.getReader();
  let busy = false;
  port.addEventListener("message", (event: MessageEvent<{ kind?: unknown }>) => {
    if (event.data.kind === "cancel") {
      reader.cancel().catch(() => undefined);
      port.close();
      return;
    }
    if (event.data.kind !== "pull" || busy) return;
    busy = true;
    void (async () => {
      const pieces: Uint8Array<ArrayBuffer>[] = [];
      let bytes = 0;
      let end = false;
      try {
        while (bytes < BATCH_BYTES) {
          const { done, value } = await reader.read();
          if (done) {
            end = true;
            break;
          }
          if (value.byteLength === 0) continue;
          const piece = transferable(value);
          pieces.push(piece);
          bytes += piece.byteLength;
        }
      } catch {
        port.postMessage({ kind: "failed" });
        return;
      } finally {
        busy = false;
      }
      port.postMessage({ kind: "pieces", pieces, end }, [...new Set(pieces.map((piece) => piece.buffer))]);
    })();
  });
  port.start();
}

/**
 * Register the download service worker and wait until it is active: a request the worker does
 * not answer would go to the server, which has no such file.
 */
export async function activeSaveWorker(): Promise<ServiceWorkerRegistration> {
  if (!("serviceWorker" in navigator)) {
    throw new SaveFailure(
      "This browser does not allow the download page to save files (service workers are off, as in some private windows). Use a normal window of a current browser, or download with the command line (securepacs get).",
    );
  }
  let registration: ServiceWorkerRegistration;
  try {
    registration = await navigator.serviceWorker.register(SCRIPT_URL, { scope: SCOPE, type: "classic" });
  } catch {
    throw new SaveFailure(
      "The browser refused to set up the download helper. Allow this site to store data (cookies and site data), then reload this page.",
    );
  }
  // navigator.serviceWorker.ready would wait forever: it waits for a worker that controls this
  // page, and this page is outside the worker's scope.
  const worker = registration.installing ?? registration.waiting;
  if (worker !== null) await activation(worker);
  if (registration.active === null) throw new SaveFailure("The download helper did not start. Reload this page.");
  return registration;
}

function activation(worker: ServiceWorker): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (worker.state === "activated") {
        worker.removeEventListener("statechange", check);
        resolve();
      } else if (worker.state === "redundant") {
        worker.removeEventListener("statechange", check);
        reject(new SaveFailure("The download helper did not start. Reload this page."));
      }
    };
    worker.addEventListener("statechange", check);
    check();
  });
}

/** A download the browser has taken over. */
export interface Saving {
  /** Resolves once the whole stream has reached the service worker: the page may close. */
  delivered(): Promise<void>;
  /** End the keep-alive and remove the iframe. */
  stop(): void;
}

/**
 * Give `stream` to the service worker and make the browser download it as `name`. Resolves
 * once the browser has asked the worker for it, i.e. the download has started; from then on
 * the browser pulls the stream as it writes the file.
 */
export async function saveStream(
  registration: ServiceWorkerRegistration,
  stream: ReadableStream<Uint8Array>,
  name: string,
  length: number | null,
): Promise<Saving> {
  const worker = registration.active;
  if (worker === null) throw new SaveFailure("The download helper stopped. Reload this page.");
  const token = randomToken();
  const channel = new MessageChannel();
  const replies = replyQueue(channel.port1);
  const pieces = new MessageChannel();
  feed(stream, pieces.port1);
  worker.postMessage(
    { kind: "securepacs-download", token, pieces: pieces.port2, disposition: contentDisposition(name), length, port: channel.port2 },
    [pieces.port2, channel.port2],
  );
  const ping = window.setInterval(() => registration.active?.postMessage({ kind: "securepacs-ping" }), PING_INTERVAL_MS);
  // The path carries only the token: the file name can name the patient, and it must never
  // reach the server, not even in a request the worker failed to intercept.
  const frame = document.createElement("iframe");
  frame.hidden = true;
  frame.title = "Download";
  const stop = (): void => {
    window.clearInterval(ping);
    channel.port1.close();
    // A frame removed at once can abort its own navigation before it became a download.
    window.setTimeout(() => frame.remove(), 1_000);
  };
  try {
    await replies.next("ready", READY_TIMEOUT_MS, "The download helper did not answer. Reload this page, then select Start download again.");
    frame.src = `/download/${token}`;
    document.body.append(frame);
    await replies.next(
      "started",
      STARTED_TIMEOUT_MS,
      "Your browser did not start the download. If it asked whether this site may download files, allow it, then select Start download again.",
    );
  } catch (error) {
    stop();
    throw error;
  }
  return {
    stop,
    delivered: () => replies.next("finished", DELIVERED_TIMEOUT_MS, "The download helper did not confirm the end of the file."),
  };
}

function replyQueue(port: MessagePort): { next(kind: string, timeoutMs: number, message: string): Promise<void> } {
  const seen = new Set<string>();
  const waiting = new Map<string, () => void>();
  port.addEventListener("message", (event: MessageEvent<{ kind?: unknown }>) => {
    const kind = event.data.kind;
    if (typeof kind !== "string") return;
    seen.add(kind);
    waiting.get(kind)?.();
  });
  port.start();
  return {
    next(kind, timeoutMs, message) {
      if (seen.has(kind)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = window.setTimeout(() => {
          waiting.delete(kind);
          reject(new SaveFailure(message));
        }, timeoutMs);
        waiting.set(kind, () => {
          window.clearTimeout(timer);
          waiting.delete(kind);
          resolve();
        });
      });
    },
  };
}

function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** An attachment header for any name: an ASCII fallback plus the exact name (RFC 6266). */
export function contentDisposition(name: string): string {
  // Path separators, quotes and control characters never belong in a saved file's name.
  const clean = name.replace(/[\u0000-\u001f\u007f"\\/:*?<>|]/g, "_").trim() || "study.zip";
  const ascii = clean.replace(/[^\x20-\x7e]/g, "_");
  const encoded = encodeURIComponent(clean).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

// The app's worker: boots the runtime once per tab, then answers the page's requests by calling
// securepacs.client.worker_session in Pyodide. Keys, passwords and decrypted attributes live
// only here; the page receives what it shows. See protocol.md §14 for the message shapes.

import { helperOpener } from "./batch-helper";
import type { HelperStart } from "./batch-helper-worker";
import { type BatchPlan, type BatchRead, localOpener, OpenerPool, readBatch } from "./batch-read";
import type { ZipFrame } from "./download/zip-writer";
import type { Inbound, Outbound, RuntimeManifest } from "./messages";
import { type RawSodium, StreamOpener } from "./stream-open";
import type { PortAnswer, PortRequest } from "./study-source";

declare const __RUNTIME_DIGEST__: string;
declare const __RUNTIME_SRI__: string;

interface PyProxyCallable {
  (argument: string): Promise<string>;
}

interface PyodideFS {
  mkdirTree(path: string): void;
  mount(type: unknown, options: { blobs: { name: string; data: Blob }[] }, mountpoint: string): void;
  unmount(mountpoint: string): void;
  filesystems: { WORKERFS: unknown };
}

/** A Python ``bytes`` (or a list of them) handed to JavaScript: copied out once, then released. */
interface PyBytes {
  toJs(): Uint8Array | Uint8Array[];
  destroy(): void;
}

type PortCall = (studyId: string, request: string, kind: string) => Promise<string | PyBytes>;

/** StudyPorts.read_plan's answer: a Python dict, converted once, then released. */
interface PyPlan {
  toJs(options: { dict_converter: (entries: Iterable<[string, unknown]>) => unknown }): BatchPlan;
  destroy(): void;
}

type PlanCall = (studyId: string, fileIds: string, kind: string) => Promise<PyPlan | undefined>;

interface Pyodide {
  FS: PyodideFS;
  registerJsModule(name: string, module: object): void;
  runPython(code: string): unknown;
  pyimport(name: string): { call: PyProxyCallable; port: PortCall; read_plan: PlanCall };
}

interface BootModule {
  bootRuntime(
    base: URL,
    manifest: RuntimeManifest,
    hooks: { onProgress: (p: { loaded: number; total: number; step: string }) => void; onOutput: (line: string) => void },
  ): Promise<{ pyodide: Pyodide; sodium: { libsodium: RawSodium } }>;
}

const scope = self as unknown as DedicatedWorkerGlobalScope;
const BASE = new URL(`/dist/@${__RUNTIME_DIGEST__}/`, scope.location.origin);

function post(message: Outbound): void {
  scope.postMessage(message);
}

interface Runtime {
  pyodide: Pyodide;
  call: PyProxyCallable;
  port: PortCall;
  plan: PlanCall;
  openers: OpenerPool;
  helper: HelperStart;
}

async function boot(): Promise<Runtime> {
  const started = performance.now();
  const response = await fetch(new URL("manifest.json", BASE), { integrity: __RUNTIME_SRI__ });
  if (!response.ok) {
    // A newer app was deployed while this page was open: its runtime replaced ours.
    throw new Error("SecurePACS was updated on the server. Reload the page.");
  }
  const manifest = (await response.json()) as RuntimeManifest;
  const { bootRuntime } = (await import(/* @vite-ignore */ new URL("boot.mjs", BASE).href)) as BootModule;
  const { pyodide, sodium } = await bootRuntime(BASE, manifest, {
    onProgress: (progress) => post({ kind: "boot", ...progress }),
    // Python's own output is for developers; it never carries secrets (nothing prints them).
    onOutput: () => undefined,
  });
  pyodide.registerJsModule("_securepacs_files", {
    read: (path: string): Promise<ArrayBuffer> => {
      const file = chosen.get(path);
      return file ? file.arrayBuffer() : Promise.reject(new Error("The chosen file is gone. Choose the folder again."));
    },
  });
  pyodide.registerJsModule("_securepacs_events", {
    post: (event: string, json: string) => post({ kind: "event", event, data: JSON.parse(json) as unknown }),
  });
  const session = pyodide.pyimport("securepacs.client.worker_session");
  pyodide.runPython("from securepacs.client.worker_session import start_in_browser; start_in_browser()");
  post({ kind: "ready", milliseconds: performance.now() - started });
  const openers = new OpenerPool([localOpener(new StreamOpener(sodium.libsodium))]);
  return { pyodide, call: session.call, port: session.port, plan: session.read_plan, openers, helper: { base: BASE.href, manifest } };
}

let helperStarting: Promise<void> | null = null;
let helperWaited: Promise<void> | null = null;
// The helper starts while the person looks at the download window; should it not have yet
// when the first batch comes, the batch waits for it at most this long.
const HELPER_WAIT_MS = 3_000;

/**
 * Start the helper thread that opens a download's batches beside this one (batch-helper.ts),
 * once a download window binds. Resolves when it is ready, or has failed: without it, this thread
 * opens every batch.
 */
function startHelper({ openers, helper }: Runtime): Promise<void> {
  helperStarting ??= new Promise<void>((resolve) => {
    let thread: Worker;
    try {
      thread = new Worker(new URL("./batch-helper-worker.ts", import.meta.url), { type: "module", name: "SecurePACS batch helper" });
    } catch {
      resolve();
      return;
    }
    const failed = (): void => {
      // For whoever reads the console: downloads then take longer, nothing else changes.
      console.warn("SecurePACS: the helper thread did not start; the worker opens every batch itself.");
      thread.terminate();
      resolve();
    };
    const started = (event: MessageEvent<{ ready?: unknown }>): void => {
      thread.removeEventListener("message", started);
      thread.removeEventListener("error", failed);
      if (event.data.ready === true) {
        openers.add(helperOpener(thread));
        resolve();
      } else {
        failed();
      }
    };
    thread.addEventListener("message", started);
    thread.addEventListener("error", failed);
    thread.postMessage(helper);
  });
  return helperStarting;
}

/**
 * The helper's start, waited for at most HELPER_WAIT_MS, once: a helper that never answers
 * delays a download's first batch only.
 */
function helperStarted(runtime: Runtime): Promise<void> {
  helperWaited ??= Promise.race([startHelper(runtime), new Promise<void>((resolve) => setTimeout(resolve, HELPER_WAIT_MS))]);
  return helperWaited;
}

// The chosen files by the path the worker mounted them at, for reading without WORKERFS.
const chosen = new Map<string, File>();
const runtime = boot();
runtime.catch((error: unknown) => post({ kind: "failed", message: String((error as Error)?.message ?? error) }));

let mounts = 0;

/**
 * Serve a viewer or download window on `port`, bound to one study: every request is answered
 * for that study and no other, whatever the window asks. Decrypted files go out as transferred
 * ArrayBuffers, so they are copied once, out of Python.
 */
function bindPort(studyId: string, port: MessagePort, kind: "viewer" | "download"): void {
  if (kind === "download") runtime.then(startHelper).catch(() => undefined);
  port.addEventListener("message", (event: MessageEvent<PortRequest>) => {
    const request = event.data;
    answerPort(studyId, request, kind).then(
      ({ answer, transfer }) => port.postMessage(answer, transfer),
      (error: unknown) => {
        const message = String((error as Error)?.message ?? error);
        port.postMessage({ id: request.id, ok: false, error: { kind: "internal", code: "", status: 0, message } });
      },
    );
  });
  port.start();
}

async function answerPort(
  studyId: string,
  request: PortRequest,
  kind: "viewer" | "download",
): Promise<{ answer: PortAnswer; transfer: Transferable[] }> {
  if (request.op === "fork") {
    // A child window of the viewer (its download window) gets its own port to the same study.
    const channel = new MessageChannel();
    bindPort(studyId, channel.port1, "download");
    return { answer: { id: request.id, ok: true, value: channel.port2 }, transfer: [channel.port2] };
  }
  const started = await runtime;
  const { port, plan, openers } = started;
  if (request.op === "readMany") {
    if (kind === "download") await helperStarted(started);
    const read = await readWithoutPython(plan, openers, studyId, request.fileIds, kind, request.frames ?? null);
    if (read?.framed === true) {
      return { answer: { id: request.id, ok: true, value: [read.buffer], framed: true, crc32s: read.crc32s }, transfer: [read.buffer] };
    }
    if (read?.framed === false) return { answer: { id: request.id, ok: true, value: read.buffers }, transfer: read.buffers };
  }
  // The core answers a readMany unframed; frames are the worker's own reader's business.
  const forCore = request.op === "readMany" ? { id: request.id, op: request.op, fileIds: request.fileIds } : request;
  const result = await port(studyId, JSON.stringify(forCore), kind);
  if (typeof result === "string") {
    const answer = JSON.parse(result) as Omit<PortAnswer, "id">;
    return { answer: { ...answer, id: request.id } as PortAnswer, transfer: [] };
  }
  let converted: Uint8Array | Uint8Array[];
  try {
    converted = result.toJs();
  } finally {
    result.destroy();
  }
  const whole = (bytes: Uint8Array): ArrayBuffer =>
    bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
      ? (bytes.buffer as ArrayBuffer)
      : (bytes.slice().buffer as ArrayBuffer);
  if (Array.isArray(converted)) {
    const buffers = converted.map(whole);
    return { answer: { id: request.id, ok: true, value: buffers }, transfer: buffers };
  }
  const buffer = whole(converted);
  return { answer: { id: request.id, ok: true, value: buffer }, transfer: [buffer] };
}

/**
 * A readMany by the worker's own reader (batch-read.ts), or null to answer it through the
 * Python core instead: when there is no plan (the core's answer then says why) or the read
 * failed (the core reads again, and names the instance that fails its checks).
 */
async function readWithoutPython(
  plan: PlanCall,
  openers: OpenerPool,
  studyId: string,
  fileIds: string[],
  kind: string,
  frames: ZipFrame[] | null,
): Promise<BatchRead | null> {
  const proxy = await plan(studyId, JSON.stringify(fileIds), kind);
  if (proxy === undefined || proxy === null) return null;
  let batch: BatchPlan;
  try {
    batch = proxy.toJs({ dict_converter: Object.fromEntries });
  } finally {
    proxy.destroy();
  }
  try {
    return await readBatch(openers, batch, frames);
  } catch (error) {
    // For whoever reads the console: a fault of this reader would otherwise only show as a
    // slower download. The reason is a status, a length or an error's name, never data.
    console.warn(`SecurePACS: ${fileIds.length} file(s) read through the core instead (${(error as Error).message}).`);
    return null;
  }
}

async function handle(message: Inbound): Promise<void> {
  const { pyodide, call } = await runtime;
  if (message.kind === "port") {
    bindPort(message.studyId, message.port, message.window);
    post({ kind: "answer", id: message.id, answer: { ok: true, value: null } });
    return;
  }
  if (message.kind === "mount") {
    // The chosen files stay in the page's File objects; WORKERFS reads them on demand.
    mounts += 1;
    const folder = `/uploads/${mounts}`;
    pyodide.FS.mkdirTree(folder);
    for (const { path, file } of message.files) chosen.set(`${folder}/${path}`, file);
    pyodide.FS.mount(
      pyodide.FS.filesystems.WORKERFS,
      { blobs: message.files.map(({ path, file }) => ({ name: path, data: file })) },
      folder,
    );
    post({ kind: "answer", id: message.id, answer: { ok: true, value: folder } });
    return;
  }
  const answer = JSON.parse(await call(JSON.stringify({ method: message.method, args: message.args })));
  post({ kind: "answer", id: message.id, answer });
}

scope.addEventListener("message", (event: MessageEvent<Inbound>) => {
  handle(event.data).catch((error: unknown) => {
    const text = String((error as Error)?.message ?? error);
    post({ kind: "answer", id: event.data.id, answer: { ok: false, error: { kind: "internal", code: "", status: 0, message: text } } });
  });
});

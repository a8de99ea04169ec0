// Where the viewer and download windows get a study's decrypted files from (protocol.md §14.5).
//
// Those windows never hold an account key. The app window that opened them asks its worker for
// a MessagePort bound to one study and hands it over with postMessage, same origin only; the
// window then talks to the worker directly. The worker verifies the signed manifest and every
// chunk before it answers, so what comes out of a port is what the owner uploaded. Keys never
// appear in a URL, in storage or in a request: the study id travels in the URL's fragment,
// which the browser does not send.

import type { ZipFrame } from "./download/zip-writer";
import type { WorkerError } from "./messages";

/** One instance of the study, as the signed manifest lists it. */
export interface StudyInstance {
  fileId: string;
  seriesUid: string;
  instanceUid: string;
  /** Size of the decrypted file in bytes. */
  size: number;
}

/** What a window may know of the study it shows: the opened worklist row and its manifest. */
export interface StudyView {
  studyId: string;
  patientName: string;
  patientId: string;
  patientSex: string;
  studyDate: string;
  studyDescription: string;
  accessionNumber: string;
  modalities: string[];
  /** Every instance, in manifest order. */
  instances: StudyInstance[];
  /** The zip name the download page proposes. */
  zipName: string;
  /** The zip path of each file id (SERIES_UID/INSTANCE_UID.dcm), as the CLI writes it. */
  zipPaths: Record<string, string>;
  /** Download as zip is allowed for this person (owner, or a share with Download or more). */
  canDownload: boolean;
  /** The advanced viewer (MPR) is included in this person's plan. */
  advanced: boolean;
}

export class SourceFailure extends Error {
  readonly kind: string;
  readonly code: string;

  constructor(error: WorkerError) {
    super(error.message);
    this.kind = error.kind;
    this.code = error.code;
  }
}

/** A study's decrypted files, one window's view of them. */
export interface StudySource {
  open(): Promise<StudyView>;
  /** The whole decrypted file. Rejects with a SourceFailure whose message names the instance. */
  read(fileId: string): Promise<ArrayBuffer>;
  /**
   * Several whole decrypted files, each in a buffer of its own, in the order asked (at most
   * 16 MiB in all): one round trip for a group of small files. Sources without it are read
   * file by file.
   */
  readMany?(fileIds: string[]): Promise<ArrayBuffer[]>;
  /**
   * readMany for a zip: the same files, each between the `head` and `tail` of its frame, in
   * one buffer with every tail's CRC-32 filled in, as the worker's own reader writes them while
   * it decrypts; or, from the Python core, unframed as readMany gives them.
   */
  readManyForZip?(fileIds: string[], frames: ZipFrame[]): Promise<FilesForZip>;
  /** The decrypted file in pieces of at most 8 MiB, pulled one at a time (bounded memory). */
  stream(fileId: string): AsyncIterable<Uint8Array>;
  /** A port for a child window (the viewer's download window), bound to the same study. */
  fork(): Promise<MessagePort>;
}

export type FilesForZip = { framed: true; buffer: ArrayBuffer; crc32s: number[] } | { framed: false; buffers: ArrayBuffer[] };

const NO_OPENER =
  "This window gets its keys from the SecurePACS window that opened it, and that window is closed " +
  "or signed out. Open the study again from the Studies tab of SecurePACS.";

// --- The port protocol -------------------------------------------------------------------

export type PortRequest =
  | { id: number; op: "open" }
  | { id: number; op: "read"; fileId: string }
  | { id: number; op: "readMany"; fileIds: string[]; frames?: ZipFrame[] }
  | { id: number; op: "stream"; fileId: string }
  | { id: number; op: "next"; handle: number }
  | { id: number; op: "close"; handle: number }
  | { id: number; op: "fork" };

type WithoutId<T> = T extends unknown ? Omit<T, "id"> : never;

// `framed` and `crc32s` come only with a readMany that gave frames, answered by the worker's own
// reader: `value` then holds one buffer, the files between their frames.
export type PortAnswer = { id: number; ok: true; value: unknown; framed?: true; crc32s?: number[] } | { id: number; ok: false; error: WorkerError };

/** The window-side end of a study port. */
export class PortSource implements StudySource {
  private next = 1;
  private readonly pending = new Map<number, (answer: PortAnswer) => void>();
  private isGone = false;

  /** `watchOpener`: the opener holds the worker, so its closing ends the port. */
  constructor(
    private readonly port: MessagePort,
    watchOpener = false,
  ) {
    port.addEventListener("message", (event: MessageEvent<PortAnswer>) => {
      const resolve = this.pending.get(event.data.id);
      this.pending.delete(event.data.id);
      resolve?.(event.data);
    });
    // The app tab that holds the worker was closed or reloaded: nothing will answer any more.
    port.addEventListener("close", () => this.lost());
    port.start();
    if (watchOpener) {
      window.setInterval(() => {
        const opener = window.opener as Window | null;
        if (this.pending.size > 0 && (opener === null || opener.closed)) this.lost();
      }, 1000);
    }
  }

  /** The worker's tab was closed or reloaded: this source will not answer again. */
  get gone(): boolean {
    return this.isGone;
  }

  private lost(): void {
    this.isGone = true;
    const error = { kind: "gone", code: "", status: 0, message: NO_OPENER };
    for (const [id, resolve] of this.pending) resolve({ id, ok: false, error });
    this.pending.clear();
  }

  private async answer(request: WithoutId<PortRequest>): Promise<PortAnswer & { ok: true }> {
    if (this.isGone) throw new SourceFailure({ kind: "gone", code: "", status: 0, message: NO_OPENER });
    const id = this.next++;
    const answer = await new Promise<PortAnswer>((resolve) => {
      this.pending.set(id, resolve);
      this.port.postMessage({ ...request, id });
    });
    if (!answer.ok) throw new SourceFailure(answer.error);
    return answer;
  }

  private async ask<T>(request: WithoutId<PortRequest>): Promise<T> {
    return (await this.answer(request)).value as T;
  }

  open(): Promise<StudyView> {
    return this.ask<StudyView>({ op: "open" });
  }

  read(fileId: string): Promise<ArrayBuffer> {
    return this.ask<ArrayBuffer>({ op: "read", fileId });
  }

  readMany(fileIds: string[]): Promise<ArrayBuffer[]> {
    return this.ask<ArrayBuffer[]>({ op: "readMany", fileIds });
  }

  async readManyForZip(fileIds: string[], frames: ZipFrame[]): Promise<FilesForZip> {
    const answer = await this.answer({ op: "readMany", fileIds, frames });
    const buffers = answer.value as ArrayBuffer[];
    const [buffer] = buffers;
    if (answer.framed === true && buffers.length === 1 && buffer !== undefined) {
      return { framed: true, buffer, crc32s: answer.crc32s ?? [] };
    }
    return { framed: false, buffers };
  }

  async *stream(fileId: string): AsyncIterable<Uint8Array> {
    const handle = await this.ask<number>({ op: "stream", fileId });
    let finished = false;
    try {
      for (;;) {
        const piece = await this.ask<ArrayBuffer | null>({ op: "next", handle });
        if (piece === null) {
          finished = true;
          return;
        }
        yield new Uint8Array(piece);
      }
    } finally {
      // A cancelled download stops pulling: the worker drops the stream's state.
      if (!finished) await this.ask<null>({ op: "close", handle }).catch(() => null);
    }
  }

  fork(): Promise<MessagePort> {
    return this.ask<MessagePort>({ op: "fork" });
  }
}

// --- Handing a port to a child window ----------------------------------------------------

export type WindowKind = "viewer" | "download";

/** The message a child window sends its opener once its page has loaded. */
export interface Hello {
  kind: "securepacs-hello";
  window: WindowKind;
  studyId: string;
}

/** The opener's reply: a port bound to the study, or why there is none. */
export type Welcome =
  | { kind: "securepacs-port"; port: MessagePort; fromApp: boolean }
  | { kind: "securepacs-refused"; message: string };

export function isHello(data: unknown): data is Hello {
  const hello = data as Partial<Hello> | null;
  return (
    typeof hello === "object" &&
    hello !== null &&
    hello.kind === "securepacs-hello" &&
    (hello.window === "viewer" || hello.window === "download") &&
    typeof hello.studyId === "string" &&
    /^[0-9a-f]{32}$/.test(hello.studyId)
  );
}

/**
 * The study id a child window was opened for: the URL's fragment (never sent to the server),
 * `#<study id>` or `#<study id>/mpr` for the advanced viewer.
 */
export function studyIdFromLocation(): string | null {
  const match = /^#([0-9a-f]{32})(\/mpr)?$/.exec(location.hash);
  return match?.[1] ?? null;
}

/** Whether the viewer was opened as the advanced viewer (MPR first). */
export function advancedFromLocation(): boolean {
  return /^#[0-9a-f]{32}\/mpr$/.test(location.hash);
}

/**
 * Ask the opener for a port to the study (a child window's first step). Resolves with the
 * source, or rejects with a message for the person.
 */
export function connect(kind: WindowKind, studyId: string, timeoutMs = 10_000): Promise<PortSource> {
  const opener = window.opener as Window | null;
  if (!opener || opener.closed) return Promise.reject(new Error(NO_OPENER));
  return new Promise((resolve, reject) => {
    const timer = window.setTimeout(() => {
      window.removeEventListener("message", receive);
      reject(new Error(NO_OPENER));
    }, timeoutMs);
    function receive(event: MessageEvent<Welcome>): void {
      if (event.origin !== location.origin || event.source !== opener) return;
      const data = event.data;
      if (data?.kind === "securepacs-port" && data.port instanceof MessagePort) {
        window.clearTimeout(timer);
        window.removeEventListener("message", receive);
        resolve(new PortSource(data.port, data.fromApp === true));
      } else if (data?.kind === "securepacs-refused") {
        window.clearTimeout(timer);
        window.removeEventListener("message", receive);
        reject(new Error(data.message));
      }
    }
    window.addEventListener("message", receive);
    const hello: Hello = { kind: "securepacs-hello", window: kind, studyId };
    opener.postMessage(hello, location.origin);
  });
}

/**
 * Answer the hellos of child windows (run by the app window and by the viewer, which opens the
 * download window): `portFor` makes a port bound to the asked study, or throws to refuse.
 * `fromApp`: this window holds the worker (the app tab), so the child may watch it close.
 */
export function serveChildren(portFor: (hello: Hello, child: Window) => Promise<MessagePort>, fromApp = false): void {
  window.addEventListener("message", (event: MessageEvent<unknown>) => {
    if (event.origin !== location.origin || !isHello(event.data)) return;
    const child = event.source as Window | null;
    if (!child) return;
    portFor(event.data, child).then(
      (port) => child.postMessage({ kind: "securepacs-port", port, fromApp } satisfies Welcome, location.origin, [port]),
      (error: unknown) =>
        child.postMessage(
          { kind: "securepacs-refused", message: error instanceof Error ? error.message : String(error) } satisfies Welcome,
          location.origin,
        ),
    );
  });
}

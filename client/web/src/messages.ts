// The messages between the page and its worker (protocol.md §14). JSON-shaped, except the File
// objects of a chosen folder, which the page hands over by structured clone.

export interface RuntimeManifest {
  pyodide: { version: string; index: string };
  libsodium: { version: string; module: string };
  wheels: string[];
  artifacts: { path: string; sha256: string; size: number }[];
}

export interface ChosenFile {
  path: string;
  file: File;
}

export type Inbound =
  | { kind: "call"; id: number; method: string; args: Record<string, unknown> }
  | { kind: "mount"; id: number; files: ChosenFile[] }
  | { kind: "port"; id: number; studyId: string; port: MessagePort; window: "viewer" | "download" };

export interface WorkerError {
  kind: string;
  code: string;
  status: number;
  message: string;
}

export type Answer = { ok: true; value: unknown } | { ok: false; error: WorkerError };

export type Outbound =
  | { kind: "boot"; loaded: number; total: number; step: string }
  | { kind: "ready"; milliseconds: number }
  | { kind: "failed"; message: string }
  | { kind: "event"; event: string; data: unknown }
  | { kind: "answer"; id: number; answer: Answer };

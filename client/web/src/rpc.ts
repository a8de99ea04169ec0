// The page's side of the worker: one request, one promise; events and boot progress to
// subscribers. The page never sees a key: requests carry what a person typed or chose.

import type { Answer, ChosenFile, Inbound, Outbound, WorkerError } from "./messages";

export class WorkerFailure extends Error {
  readonly kind: string;
  readonly code: string;
  readonly status: number;

  constructor(error: WorkerError) {
    super(error.message);
    this.kind = error.kind;
    this.code = error.code;
    this.status = error.status;
  }
}

/** What to show for a failed request: the worker's message, written for the person. */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

type Listener = (data: unknown) => void;

export interface BootState {
  loaded: number;
  total: number;
  step: string;
  ready: boolean;
  failed: string | null;
  milliseconds: number | null;
}

export class Runtime {
  private readonly worker: Worker;
  private next = 1;
  private readonly pending = new Map<number, (answer: Answer) => void>();
  private readonly listeners = new Map<string, Set<Listener>>();
  readonly boot: BootState = { loaded: 0, total: 0, step: "download", ready: false, failed: null, milliseconds: null };
  private readonly bootListeners = new Set<(state: BootState) => void>();
  // Hears every failed call with its method, so the app can tell "the session ended" from "one call failed".
  private failureHandler: (failure: WorkerFailure, method: string) => void = () => undefined;

  constructor() {
    this.worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module", name: "securepacs" });
    this.worker.addEventListener("message", (event: MessageEvent<Outbound>) => this.receive(event.data));
    this.worker.addEventListener("error", (event) => {
      const message = "The SecurePACS worker stopped. Reload the page.";
      if (!this.boot.ready) {
        this.boot.failed = event.message || message;
        this.emitBoot();
      }
      // A dead worker answers nothing: every open request fails instead of waiting for ever.
      for (const resolve of this.pending.values()) {
        resolve({ ok: false, error: { kind: "internal", code: "", status: 0, message } });
      }
      this.pending.clear();
    });
  }

  onFailure(handler: (failure: WorkerFailure, method: string) => void): void {
    this.failureHandler = handler;
  }

  onBoot(listener: (state: BootState) => void): void {
    this.bootListeners.add(listener);
    listener(this.boot);
  }

  on(event: string, listener: Listener): () => void {
    const set = this.listeners.get(event) ?? new Set<Listener>();
    set.add(listener);
    this.listeners.set(event, set);
    return () => set.delete(listener);
  }

  private emitBoot(): void {
    for (const listener of this.bootListeners) listener(this.boot);
  }

  private receive(message: Outbound): void {
    switch (message.kind) {
      case "boot":
        Object.assign(this.boot, { loaded: message.loaded, total: message.total, step: message.step });
        this.emitBoot();
        break;
      case "ready":
        this.boot.ready = true;
        this.boot.milliseconds = message.milliseconds;
        this.emitBoot();
        break;
      case "failed":
        this.boot.failed = message.message;
        this.emitBoot();
        break;
      case "event":
        for (const listener of this.listeners.get(message.event) ?? []) listener(message.data);
        break;
      case "answer": {
        const resolve = this.pending.get(message.id);
        this.pending.delete(message.id);
        resolve?.(message.answer);
        break;
      }
    }
  }

  private send(message: Inbound, transfer: Transferable[] = []): Promise<Answer> {
    return new Promise((resolve) => {
      this.pending.set(message.id, resolve);
      this.worker.postMessage(message, transfer);
    });
  }

  /** The id the next call will get: lets a caller cancel the request it is about to make. */
  peekId(): number {
    return this.next;
  }

  async call<T>(method: string, args: Record<string, unknown> = {}): Promise<T> {
    const answer = await this.send({ kind: "call", id: this.next++, method, args });
    if (!answer.ok) {
      const failure = new WorkerFailure(answer.error);
      this.failureHandler(failure, method);
      throw failure;
    }
    return answer.value as T;
  }

  /**
   * A port to the worker bound to one study, for a viewer or download window. The study is
   * opened (and verified) first, so a study that does not open is refused with its reason.
   */
  async studyPort(studyId: string, window: "viewer" | "download"): Promise<MessagePort> {
    await this.call("open_study", { study_id: studyId });
    const channel = new MessageChannel();
    // The worker, not the window, decides what the port is for: a download's reads need the
    // Download permission on the server.
    const answer = await this.send({ kind: "port", id: this.next++, studyId, port: channel.port1, window }, [channel.port1]);
    if (!answer.ok) throw new WorkerFailure(answer.error);
    return channel.port2;
  }

  async mount(files: ChosenFile[]): Promise<string> {
    const answer = await this.send({ kind: "mount", id: this.next++, files });
    if (!answer.ok) throw new WorkerFailure(answer.error);
    return answer.value as string;
  }
}

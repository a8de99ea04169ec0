// The same viewer on unencrypted files: `/viewer#plain=<same-origin path of a StudyView JSON>`.
// It is the benchmark's baseline (the viewer's own cost, without decryption) and the harness the
// viewer is developed and tested against while no app window is at hand. Nothing here is
// reachable from an encrypted study: the page takes this path only when its fragment says so.

import type { StudyInstance, StudySource, StudyView } from "../study-source";

/** An instance of a plain study: the manifest entry plus where its file is served. */
export interface PlainInstance extends StudyInstance {
  url: string;
}

export interface PlainView extends StudyView {
  instances: PlainInstance[];
}

/** What the fragment of a plain-mode address asks for. */
export interface PlainRequest {
  viewPath: string;
  /** Optional bound on the decrypted-file cache in MiB, for the benchmark's memory runs. */
  cacheMiB: number | null;
}

/** `#plain=/path/study.json[&cache=<MiB>]`, or null when the fragment is something else. */
export function plainRequestFromLocation(): PlainRequest | null {
  if (!location.hash.startsWith("#plain=")) return null;
  const params = new URLSearchParams(location.hash.slice(1));
  const viewPath = params.get("plain") ?? "";
  const cache = Number(params.get("cache"));
  return { viewPath, cacheMiB: Number.isFinite(cache) && cache > 0 ? cache : null };
}

function sameOrigin(path: string): URL {
  // Only a path on this origin: the page's CSP would refuse another origin anyway, and a
  // fragment must not make the viewer fetch from wherever it names.
  const url = new URL(path, location.origin);
  if (!path.startsWith("/") || path.startsWith("//") || url.origin !== location.origin) {
    throw new Error(`The plain study path must be a path on this server (it was "${path}").`);
  }
  return url;
}

export class PlainSource implements StudySource {
  private readonly instances = new Map<string, PlainInstance>();

  constructor(private readonly viewPath: string) {}

  async open(): Promise<StudyView> {
    const answer = await fetch(sameOrigin(this.viewPath), { cache: "no-store" });
    if (!answer.ok) throw new Error(`The plain study ${this.viewPath} could not be loaded (HTTP ${answer.status}).`);
    const view = (await answer.json()) as PlainView;
    for (const instance of view.instances) this.instances.set(instance.fileId, instance);
    return view;
  }

  async read(fileId: string): Promise<ArrayBuffer> {
    const instance = this.instances.get(fileId);
    if (instance === undefined) throw new Error(`The study has no file ${fileId}.`);
    const answer = await fetch(sameOrigin(instance.url));
    if (!answer.ok) {
      throw new Error(`Instance ${instance.instanceUid} could not be read: the server answered HTTP ${answer.status}.`);
    }
    return answer.arrayBuffer();
  }

  async *stream(fileId: string): AsyncIterable<Uint8Array> {
    yield new Uint8Array(await this.read(fileId));
  }

  fork(): Promise<MessagePort> {
    return Promise.reject(new Error("The unencrypted viewer has no study port to hand on: open the study from SecurePACS to download it."));
  }
}

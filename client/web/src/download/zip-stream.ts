// A study as a zip stream: every instance stored (not recompressed) under its zip path, in
// manifest order, read from the study source only as fast as the zip is read.

import { type FramedRun, type ZipFrame, zipFrames, zipLength, zipStream } from "./zip-writer";

import type { FilesForZip, StudySource, StudyView } from "../study-source";

export interface StudyZip {
  /** The zip, produced as it is read; nothing is read from the source before that. */
  stream: ReadableStream<Uint8Array>;
  /** The zip's exact length in bytes. */
  length: number;
  /** How many files are in the zip so far. */
  readonly filesDone: number;
  /** Why the source stopped, when it did (the instance that failed verification, say). */
  readonly failure: Error | null;
  /** Stop reading: the file being read is closed at the source, the others never opened. */
  stop(): void;
}

export class SizeMismatch extends Error {
  constructor(path: string) {
    super(`The file ${path} does not have the size the study's manifest lists. The study may be damaged: ask its owner to upload it again.`);
  }
}

export function studyZip(source: StudySource, view: StudyView): StudyZip {
  // One date for every entry, the time of the download: the manifest lists no file times.
  const lastModified = new Date();
  const entries = view.instances.map((instance) => {
    const name = view.zipPaths[instance.fileId];
    if (name === undefined) throw new Error("The study's manifest has no file name for one of its files. Ask the study's owner to upload it again.");
    return { name, size: instance.size, fileId: instance.fileId };
  });
  let filesDone = 0;
  let failure: Error | null = null;
  let stopped = false;
  const readers: AsyncGenerator<Uint8Array>[] = [];

  async function* pieces(fileId: string, name: string, size: number): AsyncGenerator<Uint8Array> {
    let read = 0;
    try {
      for await (const piece of source.stream(fileId)) {
        // Leaving the loop closes the source's stream, so the worker stops decrypting.
        if (stopped) return;
        read += piece.byteLength;
        // The zip declares each size up front (the Content-Length the browser checks), so a
        // file that differs would make a broken zip: stop with the file's name instead.
        if (read > size) throw new SizeMismatch(name);
        yield piece;
      }
      if (stopped) return;
      if (read !== size) throw new SizeMismatch(name);
      filesDone += 1;
    } catch (error) {
      failure ??= error instanceof Error ? error : new Error(String(error));
      throw error;
    }
  }

  const frames = zipFrames(entries, lastModified);
  const groups = groupSmallFiles(source, entries, frames);

  async function* grouped(group: Group, fileId: string, name: string): AsyncGenerator<Uint8Array> {
    try {
      const file = await group.take(fileId);
      if (stopped) return;
      filesDone += 1;
      yield file;
    } catch (error) {
      const reason = error instanceof GroupSizeMismatch ? new SizeMismatch(name) : error instanceof Error ? error : new Error(String(error));
      failure ??= reason;
      throw reason;
    }
  }

  // The first file of a group begins a run that the worker frames as zip entries while it
  // decrypts; when its answer comes unframed (read by the core), the files go one by one.
  const run = (group: Group): FramedRun => ({
    count: group.size,
    read: async () => {
      try {
        const framed = await group.framed();
        if (framed !== null && !stopped) filesDone += group.size;
        return framed;
      } catch (error) {
        failure ??= error instanceof Error ? error : new Error(String(error));
        throw error;
      }
    },
  });

  const files = entries.map(({ name, size, fileId }) => {
    // A generator's body runs only when the zip first reads it, so this opens nothing yet.
    const group = groups.get(fileId);
    const input = group ? grouped(group, fileId, name) : pieces(fileId, name, size);
    readers.push(input);
    return { name, size, input, ...(group?.startsWith(fileId) === true ? { run: run(group) } : {}) };
  });
  return {
    stream: zipStream(files, lastModified),
    length: zipLength(files),
    get filesDone() {
      return filesDone;
    },
    get failure() {
      return failure;
    },
    stop() {
      if (stopped) return;
      stopped = true;
      // return() on the reader that is waiting for a piece takes effect when the piece
      // arrives; the unread ones end without ever asking the source.
      for (const reader of readers) void reader.return(undefined).catch(() => undefined);
    },
  };
}

// Small files travel in groups: one port round trip fetches (and the worker decrypts and frames
// as zip entries) several of them, and the groups after it are asked for while the zip writes
// this one: the worker reads one from the network while it (and its helper thread) open two.
// At most GROUPS_AHEAD + 1 groups are held, so memory stays within about 3 x GROUP_BYTES here
// whatever the study's size.
const SMALL_BYTES = 4 * 1024 * 1024;
const GROUP_BYTES = 12 * 1024 * 1024;
const GROUPS_AHEAD = 2;

class GroupSizeMismatch extends Error {}

class Group {
  next: Group | null = null;
  private answer: Promise<FilesForZip> | null = null;
  private left: number;

  constructor(
    private readonly readMany: (fileIds: string[], frames: ZipFrame[]) => Promise<FilesForZip>,
    private readonly files: { fileId: string; size: number; frame: ZipFrame }[],
  ) {
    this.left = files.length;
  }

  get size(): number {
    return this.files.length;
  }

  startsWith(fileId: string): boolean {
    return this.files[0]?.fileId === fileId;
  }

  private fetch(): Promise<FilesForZip> {
    if (this.answer === null) {
      this.answer = this.readMany(
        this.files.map((f) => f.fileId),
        this.files.map((f) => f.frame),
      );
      // Not awaited here: a failure is reported by the call that reaches it.
      this.answer.catch(() => undefined);
    }
    return this.answer;
  }

  /** Ask for the groups after this one, so that the worker reads and opens them meanwhile. */
  private fetchAhead(): void {
    let group = this.next;
    for (let ahead = 0; ahead < GROUPS_AHEAD && group !== null; ahead += 1) {
      group.fetch();
      group = group.next;
    }
  }

  private release(): void {
    this.answer = Promise.resolve({ framed: false, buffers: [] });
  }

  /**
   * The group's files as zip entries in one buffer, with their CRCs, or null when they came
   * unframed (take() then gives each); asks for this group and for the GROUPS_AHEAD after it.
   */
  async framed(): Promise<{ bytes: Uint8Array; crc32s: number[] } | null> {
    const answer = this.fetch();
    this.fetchAhead();
    const files = await answer;
    if (!files.framed) return null;
    this.left = 0;
    this.release();
    return { bytes: new Uint8Array(files.buffer), crc32s: files.crc32s };
  }

  /** One file of the group, unframed; the first call asks for the group and the ones after it. */
  async take(fileId: string): Promise<Uint8Array> {
    const answer = this.fetch();
    this.fetchAhead();
    const files = await answer;
    const buffers = files.framed ? [] : files.buffers;
    const index = this.files.findIndex((file) => file.fileId === fileId);
    const buffer = buffers[index];
    if (index < 0 || buffers.length !== this.files.length || buffer === undefined || buffer.byteLength !== this.files[index]?.size) {
      throw new GroupSizeMismatch();
    }
    // The last file taken lets the group's buffers go.
    this.left -= 1;
    if (this.left === 0) this.release();
    return new Uint8Array(buffer);
  }
}

function groupSmallFiles(source: StudySource, entries: { fileId: string; size: number }[], frames: ZipFrame[]): Map<string, Group> {
  const groups = new Map<string, Group>();
  const plain = source.readMany?.bind(source);
  const readMany =
    source.readManyForZip?.bind(source) ??
    (plain === undefined ? undefined : async (fileIds: string[]): Promise<FilesForZip> => ({ framed: false, buffers: await plain(fileIds) }));
  if (readMany === undefined) return groups;
  let current: { fileId: string; size: number; frame: ZipFrame }[] = [];
  let bytes = 0;
  let previous: Group | null = null;
  const close = (): void => {
    if (current.length === 0) return;
    const group = new Group(readMany, current);
    for (const file of current) groups.set(file.fileId, group);
    if (previous !== null) previous.next = group;
    previous = group;
    current = [];
    bytes = 0;
  };
  for (const [index, entry] of entries.entries()) {
    const frame = frames[index];
    if (entry.size > SMALL_BYTES || frame === undefined) {
      close();
      continue;
    }
    if (bytes + entry.size > GROUP_BYTES) close();
    current.push({ fileId: entry.fileId, size: entry.size, frame });
    bytes += entry.size;
  }
  close();
  return groups;
}

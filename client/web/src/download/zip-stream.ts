// A study as a zip stream: every instance stored (not recompressed) under its zip path, in
// manifest order, read from the study source only as fast as the zip is read.

import { makeZip, predictLength } from "client-zip";

import type { StudySource, StudyView } from "../study-source";

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

  const files = entries.map(({ name, size, fileId }) => {
    // A generator's body runs only when the zip first reads it, so this opens nothing yet.
    const input = pieces(fileId, name, size);
    readers.push(input);
    return { name, size, lastModified, input };
  });
  return {
    stream: makeZip(files, { buffersAreUTF8: true }),
    length: Number(predictLength(entries.map(({ name, size }) => ({ name, size })))),
    get filesDone() {
      return filesDone;
    },
    get failure() {
      return failure;
    },
    stop() {
      if (stopped) return;
      stopped = true;
      // The zip itself never returns its inputs when it is cancelled. return() on the reader
      // that is waiting for a piece takes effect when the piece arrives; the unread ones end
      // without ever asking the source.
      for (const reader of readers) void reader.return(undefined).catch(() => undefined);
    },
  };
}

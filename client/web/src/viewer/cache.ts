// The decrypted files the viewer holds: a least-recently-used cache bounded in bytes, in front of
// a queue of source reads by priority. A 1,000-slice series must not exhaust the tab, so the
// cache forgets the files used longest ago and the next use reads them from the source again.
// Reads are few at a time (the worker decrypts one file at a time anyway) and the person's
// own request always goes before thumbnails, which go before prefetching. A source that can read
// several files in one round trip (StudySource.readMany) gets the prefetched small files in groups.

export type ReadPriority = "interaction" | "thumbnail" | "prefetch";

const RANK: Record<ReadPriority, number> = { interaction: 0, thumbnail: 1, prefetch: 2 };

export const DEFAULT_FILE_CACHE_BYTES = 512 * 1024 * 1024;
const DEFAULT_READS_IN_FLIGHT = 4;
// A group of prefetched files read at once: well under readMany's 16 MiB, so that one group
// does not keep the person's next image waiting long.
const GROUP_BYTES = 4 * 1024 * 1024;
const GROUP_FILES = 32;

/** Where the files come from: one at a time, and optionally several in one answer. */
export interface FileSource {
  read(fileId: string): Promise<ArrayBuffer>;
  readMany?: ((fileIds: string[]) => Promise<ArrayBuffer[]>) | undefined;
  /** The decrypted size the manifest gives, which splits a group's answer into its files. */
  sizeOf(fileId: string): number | undefined;
}

interface Waiting {
  fileId: string;
  rank: number;
  order: number;
  resolve: (bytes: ArrayBuffer) => void;
  reject: (error: unknown) => void;
}

export class FileCache {
  // A Map iterates in insertion order: re-inserting on use keeps the oldest use first.
  private readonly files = new Map<string, ArrayBuffer>();
  private readonly inFlight = new Map<string, Promise<ArrayBuffer>>();
  private readonly waiting: Waiting[] = [];
  private usedBytes = 0;
  private running = 0;
  private order = 0;

  constructor(
    private readonly source: FileSource,
    readonly budgetBytes = DEFAULT_FILE_CACHE_BYTES,
    private readonly readsInFlight = DEFAULT_READS_IN_FLIGHT,
  ) {}

  /** The file, from memory or from the source; a read already under way is shared. */
  get(fileId: string, priority: ReadPriority): Promise<ArrayBuffer> {
    const cached = this.files.get(fileId);
    if (cached !== undefined) {
      this.files.delete(fileId);
      this.files.set(fileId, cached);
      return Promise.resolve(cached);
    }
    const running = this.inFlight.get(fileId);
    if (running !== undefined) {
      // Someone now needs sooner a file that was queued for later: move it up.
      const queued = this.waiting.find((entry) => entry.fileId === fileId);
      if (queued !== undefined && RANK[priority] < queued.rank) queued.rank = RANK[priority];
      return running;
    }
    const promise = new Promise<ArrayBuffer>((resolve, reject) => {
      this.waiting.push({ fileId, rank: RANK[priority], order: this.order++, resolve, reject });
    });
    this.inFlight.set(fileId, promise);
    // The entry leaves inFlight once settled, whatever the outcome: a failed read is retried
    // by the next request instead of failing forever.
    promise.then(
      () => this.inFlight.delete(fileId),
      () => this.inFlight.delete(fileId),
    );
    this.pump();
    return promise;
  }

  private pump(): void {
    while (this.running < this.readsInFlight && this.waiting.length > 0) {
      let best = 0;
      for (let i = 1; i < this.waiting.length; i++) {
        const a = this.waiting[i]!;
        const b = this.waiting[best]!;
        if (a.rank < b.rank || (a.rank === b.rank && a.order < b.order)) best = i;
      }
      const [next] = this.waiting.splice(best, 1);
      if (next === undefined) return;
      const group = next.rank === RANK.prefetch ? this.groupAfter(next) : [next];
      this.running += 1;
      const done = (): void => {
        this.running -= 1;
        this.pump();
      };
      if (group.length === 1) {
        this.source.read(next.fileId).then(
          (bytes) => {
            this.store(next.fileId, bytes);
            next.resolve(bytes);
            done();
          },
          (error: unknown) => {
            next.reject(error);
            done();
          },
        );
      } else {
        this.readGroup(group).then(done, done);
      }
    }
  }

  /** `first` and the prefetches queued after it, as many as fit one grouped read. */
  private groupAfter(first: Waiting): Waiting[] {
    const group = [first];
    if (this.source.readMany === undefined) return group;
    let bytes = this.source.sizeOf(first.fileId) ?? GROUP_BYTES;
    const candidates = this.waiting.filter((entry) => entry.rank === RANK.prefetch).sort((a, b) => a.order - b.order);
    for (const entry of candidates) {
      const size = this.source.sizeOf(entry.fileId);
      if (group.length >= GROUP_FILES || size === undefined || bytes + size > GROUP_BYTES) break;
      group.push(entry);
      bytes += size;
      this.waiting.splice(this.waiting.indexOf(entry), 1);
    }
    return group;
  }

  private async readGroup(group: Waiting[]): Promise<void> {
    try {
      const all = await this.source.readMany!(group.map((entry) => entry.fileId));
      const sized = group.every((entry, i) => all[i]?.byteLength === this.source.sizeOf(entry.fileId));
      if (all.length !== group.length || !sized) throw new Error("The grouped read does not match its files.");
      group.forEach((entry, i) => {
        const bytes = all[i]!;
        this.store(entry.fileId, bytes);
        entry.resolve(bytes);
      });
    } catch {
      // One bad file fails the whole group: read each on its own, so each gets its own answer.
      await Promise.all(
        group.map((entry) =>
          this.source.read(entry.fileId).then(
            (bytes) => {
              this.store(entry.fileId, bytes);
              entry.resolve(bytes);
            },
            (error: unknown) => entry.reject(error),
          ),
        ),
      );
    }
  }

  private store(fileId: string, bytes: ArrayBuffer): void {
    // A file larger than the whole budget is handed to its reader but not kept.
    if (bytes.byteLength > this.budgetBytes) return;
    this.evict(fileId);
    while (this.usedBytes + bytes.byteLength > this.budgetBytes) {
      const oldest = this.files.keys().next();
      if (oldest.done === true) break;
      this.evict(oldest.value);
    }
    this.files.set(fileId, bytes);
    this.usedBytes += bytes.byteLength;
  }

  private evict(fileId: string): void {
    const bytes = this.files.get(fileId);
    if (bytes === undefined) return;
    this.files.delete(fileId);
    this.usedBytes -= bytes.byteLength;
  }
}

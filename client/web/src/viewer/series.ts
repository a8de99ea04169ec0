// The study's series and the order of their images. The manifest gives each series its files
// but not their geometry, so a series first shows its images in manifest order, one image id per
// file; once every header is read (a few reads in flight, in the background) the images are
// sorted along the slice normal, or by instance number, and multi-frame files are spread into
// their frames.

import type { StudyInstance, StudyView } from "../study-source";
import type { ReadPriority } from "./cache";
import { type Header, imageIdsOf, type Instances, messageOf, SCHEME, type Vector3 } from "./instances";

const MPR_MODALITIES = new Set(["CT", "MR"]);
const MPR_MIN_SLICES = 3;
const PARALLEL_TOLERANCE = 1e-3;

function cross(a: Vector3, b: Vector3): Vector3 {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

function dot(a: Vector3, b: Vector3): number {
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

function sliceNormal(header: Header): Vector3 | null {
  const o = header.orientation;
  if (o === null) return null;
  return cross([o[0], o[1], o[2]], [o[3], o[4], o[5]]);
}

/**
 * Image-bearing headers in display order: along the common slice normal when every image has a
 * position and they are parallel, else by instance number; ties keep manifest order.
 */
export function sortImages(headers: Header[]): Header[] {
  const byNumber = (a: Header, b: Header): number => (a.instanceNumber ?? Infinity) - (b.instanceNumber ?? Infinity);
  const images = headers.filter((header) => header.hasPixels);
  const normal = images[0] === undefined ? null : sliceNormal(images[0]);
  const parallel =
    normal !== null &&
    images.every((header) => {
      const own = sliceNormal(header);
      return header.position !== null && own !== null && Math.abs(Math.abs(dot(own, normal)) - 1) < PARALLEL_TOLERANCE;
    });
  if (!parallel || normal === null) return [...images].sort(byNumber);
  const depth = (header: Header): number => dot(header.position as Vector3, normal);
  return [...images].sort((a, b) => depth(a) - depth(b) || byNumber(a, b));
}

export class Series {
  private readonly listeners = new Set<() => void>();
  private sweep: Promise<void> | null = null;
  private finalIds: string[] | null = null;
  private changeScheduled = false;
  /** Files whose read or parse failed, with the message naming them. */
  readonly failures = new Map<string, string>();

  constructor(
    readonly uid: string,
    readonly instances: StudyInstance[],
    private readonly store: Instances,
  ) {}

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  changed(): void {
    for (const listener of this.listeners) listener();
  }

  headers(): Header[] {
    return this.instances.map((instance) => this.store.header(instance.fileId)).filter((h): h is Header => h !== undefined);
  }

  /** The first known header: what the series list shows. */
  get sample(): Header | undefined {
    for (const instance of this.instances) {
      const header = this.store.header(instance.fileId);
      if (header !== undefined) return header;
    }
    return undefined;
  }

  get complete(): boolean {
    return this.finalIds !== null;
  }

  get headersRead(): number {
    return this.headers().length + this.failures.size;
  }

  /** Instances without pixel data (SR, PR, …): listed, not shown. */
  nonImages(): Header[] {
    return this.headers().filter((header) => !header.hasPixels);
  }

  /** Every file of the series is read and none has pixels. */
  get nonImageOnly(): boolean {
    const headers = this.headers();
    return headers.length === this.instances.length && headers.every((header) => !header.hasPixels);
  }

  /** The images as far as known: sorted once every header is read, manifest order before. */
  imageIds(): string[] {
    if (this.finalIds !== null) return this.finalIds;
    return this.instances.flatMap((instance) => {
      const header = this.store.header(instance.fileId);
      if (header === undefined) return [`${SCHEME}:${instance.fileId}`];
      return header.hasPixels ? imageIdsOf(header) : [];
    });
  }

  /** The number of images the series list shows (instances until their frames are known). */
  get imageCount(): number {
    return this.imageIds().length;
  }

  /** The first instance with pixels, reading files in manifest order until one has them. */
  async firstImage(priority: ReadPriority): Promise<Header | null> {
    for (const instance of this.instances) {
      try {
        const { header } = await this.store.load(instance.fileId, priority);
        if (header.hasPixels) return header;
      } catch (error) {
        this.failures.set(instance.fileId, messageOf(error));
        // The panel shows the failure of this first file itself.
        return null;
      }
    }
    return null;
  }

  /** Read every header (once), then fix the order. */
  loadAll(): Promise<void> {
    this.sweep ??= this.readAll();
    return this.sweep;
  }

  private async readAll(): Promise<void> {
    // All asked at once: the file cache keeps a few reads in flight (grouping small files when
    // the source can) and lets the person's own requests go first.
    const pending = this.instances.filter((instance) => this.store.header(instance.fileId) === undefined);
    await Promise.all(
      pending.map(async (instance) => {
        try {
          await this.store.load(instance.fileId, "prefetch");
          this.failures.delete(instance.fileId);
        } catch (error) {
          this.failures.set(instance.fileId, messageOf(error));
        }
        this.changedSoon();
      }),
    );
    const sorted = sortImages(this.headers()).flatMap(imageIdsOf);
    // Files that could not be read stay in the stack, last, so scrolling reaches their message.
    const unread = this.instances.filter((i) => this.failures.has(i.fileId)).map((i) => `${SCHEME}:${i.fileId}`);
    this.finalIds = [...sorted, ...unread];
    this.changed();
  }

  /** Progress reports at most once a frame: a series of a thousand files is read in a few seconds. */
  private changedSoon(): void {
    if (this.changeScheduled) return;
    this.changeScheduled = true;
    requestAnimationFrame(() => {
      this.changeScheduled = false;
      this.changed();
    });
  }

  /** Why MPR cannot be built from this series, or null when it can. */
  mprProblem(): string | null {
    const headers = this.headers();
    const sample = headers.find((h) => h.hasPixels);
    if (sample === undefined) return "This series has no images.";
    if (!MPR_MODALITIES.has(sample.modality)) return `MPR is for CT and MR series; this series is ${sample.modality || "of another modality"}.`;
    if (!this.complete) return "The series is still loading; try again in a moment.";
    const images = headers.filter((h) => h.hasPixels);
    if (images.some((h) => h.frames > 1)) return "MPR needs a series of single-frame slices; this series has multi-frame images.";
    if (images.length < MPR_MIN_SLICES) return `MPR needs at least ${MPR_MIN_SLICES} parallel slices; this series has ${images.length}.`;
    const normal = sliceNormal(sample);
    const sameGrid = images.every((h) => h.rows === sample.rows && h.columns === sample.columns);
    const parallel =
      normal !== null &&
      images.every((h) => {
        const own = sliceNormal(h);
        return h.position !== null && own !== null && Math.abs(Math.abs(dot(own, normal)) - 1) < PARALLEL_TOLERANCE;
      });
    if (!sameGrid || !parallel) return "MPR needs parallel slices of one size; this series is not one volume.";
    const depths = new Set(images.map((h) => dot(h.position as Vector3, normal).toFixed(3)));
    if (depths.size < MPR_MIN_SLICES) return `MPR needs at least ${MPR_MIN_SLICES} slice positions; this series has ${depths.size}.`;
    return null;
  }
}

/** The study's series in manifest order. */
export function seriesOf(view: StudyView, store: Instances): Series[] {
  const groups = new Map<string, StudyInstance[]>();
  for (const instance of view.instances) {
    const group = groups.get(instance.seriesUid);
    if (group === undefined) groups.set(instance.seriesUid, [instance]);
    else group.push(instance);
  }
  return [...groups].map(([uid, instances]) => new Series(uid, instances, store));
}

// The series list beside the viewports: one entry per series with a small rendering of its first
// image, modality, number and description, and the image count. Choosing an entry shows the
// series in the active viewport. A series of non-image objects (SR, PR, …) is listed with a note.

import { Enums, utilities } from "@cornerstonejs/core";

import { h, replace } from "../dom";
import { imageIdsOf, type Instances } from "./instances";
import type { Series } from "./series";

const THUMBNAIL_PIXELS = 96;

export class SeriesList {
  readonly element = h("nav", { class: "series-list", "aria-label": "Series" });
  private readonly entries = new Map<Series, { button: HTMLButtonElement; canvas: HTMLCanvasElement; text: HTMLElement; drawn: boolean }>();

  constructor(
    readonly series: Series[],
    private readonly store: Instances,
    private readonly choose: (series: Series) => void,
  ) {
    for (const item of series) {
      const canvas = h("canvas", { width: THUMBNAIL_PIXELS, height: THUMBNAIL_PIXELS, class: "thumbnail", "aria-hidden": "true" });
      const text = h("div", { class: "series-text" });
      const button = h("button", { type: "button", class: "series-item", "data-testid": "series", "data-series-uid": item.uid, onclick: () => this.choose(item) }, canvas, text);
      this.entries.set(item, { button, canvas, text, drawn: false });
      this.element.appendChild(button);
      item.onChange(() => this.update(item));
      this.update(item);
    }
  }

  /** Read each series' first image and draw it, one series after the other; then list the
   * series by their number, as the modality numbered them. */
  async load(): Promise<void> {
    for (const item of this.series) {
      await item.firstImage("thumbnail");
      this.update(item);
    }
    for (const item of this.ordered()) {
      const entry = this.entries.get(item);
      if (entry !== undefined) this.element.appendChild(entry.button);
    }
  }

  /** The series by series number (unnumbered last), manifest order among equals. */
  ordered(): Series[] {
    return [...this.series].sort((a, b) => (a.sample?.seriesNumber ?? Infinity) - (b.sample?.seriesNumber ?? Infinity));
  }

  /** Mark the series the active viewport shows. */
  select(series: Series | null): void {
    for (const [item, { button }] of this.entries) button.setAttribute("aria-current", String(item === series));
  }

  private update(item: Series): void {
    const entry = this.entries.get(item);
    if (entry === undefined) return;
    const sample = item.sample;
    const title = [sample?.seriesNumber !== null && sample?.seriesNumber !== undefined ? `#${sample.seriesNumber}` : "", sample?.seriesDescription ?? ""].filter(Boolean).join(" ");
    const count = item.imageCount;
    const nonImages = item.nonImages().length;
    let note: string | null = null;
    if (item.nonImageOnly) {
      const first = item.nonImages()[0];
      note = first === undefined ? null : this.store.undecodable(first);
    } else if (nonImages > 0) {
      note = `${nonImages} non-image object${nonImages === 1 ? "" : "s"} (${[...new Set(item.nonImages().map((h) => h.modality || "other"))].join(", ")}) not displayed.`;
    }
    const failed = item.failures.size;
    replace(
      entry.text,
      h("span", { class: "series-modality" }, sample?.modality || "…"),
      h("span", { class: "series-title" }, title || "Series"),
      h("span", { class: "series-count", "data-testid": "series-count" }, item.nonImageOnly ? `${item.instances.length} object${item.instances.length === 1 ? "" : "s"}` : `${count} image${count === 1 ? "" : "s"}`),
      note === null ? null : h("span", { class: "series-note", "data-testid": "series-note" }, note),
      failed > 0 ? h("span", { class: "series-note error" }, `${failed} instance${failed === 1 ? "" : "s"} could not be read.`) : null,
    );
    entry.button.title = item.nonImageOnly ? (note ?? "") : `Show this series in the active viewport`;
    const headers = item.headers();
    const drawable = headers.some((header) => header.hasPixels && this.store.undecodable(header) === null);
    entry.button.classList.toggle("no-thumbnail", !drawable && headers.length === item.instances.length);
    if (!entry.drawn && sample !== undefined) this.draw(item, entry);
  }

  private draw(item: Series, entry: { canvas: HTMLCanvasElement; drawn: boolean; button: HTMLButtonElement }): void {
    const first = item.headers().find((header) => header.hasPixels && this.store.undecodable(header) === null);
    if (first === undefined) return;
    entry.drawn = true;
    const imageId = imageIdsOf(first)[0]!;
    utilities.loadImageToCanvas({ canvas: entry.canvas, imageId, requestType: Enums.RequestType.Thumbnail }).then(
      () => entry.button.classList.add("has-thumbnail"),
      () => entry.button.classList.add("no-thumbnail"),
    );
  }
}

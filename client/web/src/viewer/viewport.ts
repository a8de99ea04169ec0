// One cell of the viewport grid: a Cornerstone stack viewport showing one series, its overlay
// text, and the message that takes the image's place when an instance cannot be shown. The
// cell's data attributes are its state for people's tools and for the tests:
//   data-state           empty | loading | ready | error
//   data-image-index     0-based index of the image shown (or being loaded)
//   data-image-count     images in the stack
//   data-loaded-count    images of the stack decoded (or whose failure is known)
//   data-series-complete "true" once every header is read and the stack is in its final order
//   data-sop-instance-uid, data-series-uid, data-window ("W/C"), data-invert, data-cine
//   data-image-rect      canvas CSS pixels of the image's outer corners: "x0,y0,x1,y1"

import {
  cache,
  Enums,
  eventTarget,
  imageLoader,
  type RenderingEngine,
  type Types,
  utilities,
} from "@cornerstonejs/core";

import { h, replace } from "../dom";
import { type Header, type Instances, messageOf, parseImageId } from "./instances";
import type { Series } from "./series";

export type PanelState = "empty" | "loading" | "ready" | "error";

const PREFETCH_IN_FLIGHT = 2;
// Prefetching stops at this share of Cornerstone's cache, so the images around the current one
// are not pushed out by images further away.
const PREFETCH_CACHE_SHARE = 0.8;

export class ViewportPanel {
  readonly cell: HTMLDivElement;
  readonly host: HTMLDivElement;
  readonly viewportId: string;
  series: Series | null = null;
  private readonly topLeft = h("div", { class: "overlay-text top-left" });
  private readonly bottomLeft = h("div", { class: "overlay-text bottom-left" });
  private readonly message = h("div", { class: "viewport-message", role: "alert", hidden: true });
  private token = 0;
  private target: string | null = null;
  private unsubscribe: (() => void) | null = null;
  private readonly prefetching = new Set<string>();
  private readonly failed = new Map<string, string>();
  private restacked = false;
  // The stack on screen is the series' final order (every header read, sorted).
  private finalStack = false;
  private enabled = false;
  private readonly onLoadError = (event: Event): void => this.loadFailed(event as CustomEvent<{ imageId?: string; error?: unknown }>);

  constructor(
    readonly index: number,
    private readonly engine: RenderingEngine,
    private readonly store: Instances,
    private readonly onSeriesShown: (panel: ViewportPanel) => void,
  ) {
    this.viewportId = `stack-${index}`;
    this.host = h("div", { class: "viewport-host" });
    this.cell = h(
      "div",
      { class: "viewport-cell", "data-testid": "viewport", "data-index": index, "data-state": "empty", tabindex: "-1" },
      this.host,
      h("div", { class: "viewport-overlay" }, this.topLeft, this.bottomLeft),
      this.message,
    );
    this.setState("empty", "Choose a series on the left to show it here.");
  }

  /** Attach Cornerstone once the cell is in the document and has a size. */
  enable(toolGroup: { addViewport(viewportId: string, renderingEngineId?: string): void }): void {
    if (this.enabled) return;
    this.engine.enableElement({
      viewportId: this.viewportId,
      element: this.host,
      type: Enums.ViewportType.STACK,
      defaultOptions: { background: [0, 0, 0] },
    });
    toolGroup.addViewport(this.viewportId, this.engine.id);
    this.host.addEventListener(Enums.Events.PRE_STACK_NEW_IMAGE, (event) => this.preNewImage(event as CustomEvent<{ imageId: string; imageIdIndex: number }>));
    this.host.addEventListener(Enums.Events.STACK_NEW_IMAGE, (event) => this.newImage(event as CustomEvent<{ imageId: string; imageIdIndex: number }>));
    this.host.addEventListener(Enums.Events.IMAGE_RENDERED, () => this.rendered());
    this.host.addEventListener(Enums.Events.VOI_MODIFIED, () => this.describeDisplay());
    this.host.addEventListener(Enums.Events.CAMERA_MODIFIED, () => this.describeDisplay());
    eventTarget.addEventListener(Enums.Events.IMAGE_LOAD_ERROR, this.onLoadError);
    this.enabled = true;
  }

  disable(): void {
    if (!this.enabled) return;
    this.token += 1;
    this.unsubscribe?.();
    eventTarget.removeEventListener(Enums.Events.IMAGE_LOAD_ERROR, this.onLoadError);
    this.engine.disableElement(this.viewportId);
    this.enabled = false;
  }

  get viewport(): Types.IStackViewport | null {
    if (!this.enabled) return null;
    return (this.engine.getViewport(this.viewportId) as Types.IStackViewport | undefined) ?? null;
  }

  get state(): PanelState {
    return (this.cell.dataset.state as PanelState | undefined) ?? "empty";
  }

  /** The image shown, if any (an error or an empty panel has none to act on). */
  get hasImage(): boolean {
    return this.state === "ready" && this.viewport?.getCurrentImageId() !== undefined;
  }

  currentHeader(): Header | undefined {
    const imageId = this.viewport?.getCurrentImageId();
    return imageId === undefined ? undefined : this.store.header(parseImageId(imageId).fileId);
  }

  currentFileId(): string | null {
    const imageId = this.target ?? this.viewport?.getCurrentImageId();
    return imageId === undefined || imageId === null ? null : parseImageId(imageId).fileId;
  }

  setActive(active: boolean): void {
    if (active) this.cell.dataset.active = "true";
    else delete this.cell.dataset.active;
  }

  private setState(state: PanelState, message = ""): void {
    this.cell.dataset.state = state;
    this.message.hidden = message === "";
    this.message.classList.toggle("error", state === "error");
    this.message.textContent = message;
  }

  /** Show a series from its first image; the rest of it loads behind. */
  async show(series: Series): Promise<void> {
    const viewport = this.viewport;
    if (viewport === null) return;
    const token = ++this.token;
    this.unsubscribe?.();
    this.series = series;
    this.restacked = false;
    this.finalStack = false;
    this.failed.clear();
    this.prefetching.clear();
    this.target = null;
    this.cell.dataset.seriesUid = series.uid;
    this.topLeft.textContent = "";
    this.bottomLeft.textContent = "";
    this.setState("loading", "Loading the series…");
    // Until the new series' first image is drawn, the canvas would show the previous one.
    this.cell.classList.add("switching");
    const first = await series.firstImage("interaction");
    if (token !== this.token) return;
    const imageIds = series.imageIds();
    this.unsubscribe = series.onChange(() => this.seriesChanged(token));
    void series.loadAll();
    if (imageIds.length === 0) {
      const notes = series.nonImages();
      this.setState("empty", notes.length > 0 ? `This series has no images to display. ${this.store.undecodable(notes[0]!)}` : "This series has no images to display.");
      this.describeAttributes();
      return;
    }
    const start = first === null ? 0 : Math.max(0, imageIds.findIndex((id) => parseImageId(id).fileId === first.fileId));
    this.target = imageIds[start] ?? null;
    this.cell.dataset.imageCount = String(imageIds.length);
    this.cell.dataset.imageIndex = String(start);
    if (series.complete) {
      this.restacked = true;
      this.finalStack = true;
    }
    try {
      await viewport.setStack(imageIds, start);
    } catch (error) {
      // Cornerstone reports a failed image through IMAGE_LOAD_ERROR too; this covers a stack
      // that fails before any image is asked for.
      if (token === this.token && this.state !== "error") this.setState("error", messageOf(error));
    }
    if (token !== this.token) return;
    viewport.render();
    this.onSeriesShown(this);
    this.describeAttributes();
    this.pumpPrefetch(token);
  }

  private preNewImage(event: CustomEvent<{ imageId: string; imageIdIndex: number }>): void {
    this.target = event.detail.imageId;
    this.cell.dataset.imageIndex = String(event.detail.imageIdIndex);
    const failure = this.failed.get(event.detail.imageId);
    if (failure !== undefined) this.setState("error", failure);
    else if (!cache.isLoaded(event.detail.imageId)) this.setState("loading", "");
  }

  private newImage(event: CustomEvent<{ imageId: string; imageIdIndex: number }>): void {
    if (event.detail.imageId !== this.target && this.target !== null) return;
    this.describeAttributes();
    this.pumpPrefetch(this.token);
  }

  private rendered(): void {
    const viewport = this.viewport;
    if (viewport === null) return;
    // Ready once the image drawn is the one asked for, read from the viewport itself: a marker
    // that Cornerstone's events had to set in the right order once left a series shown again
    // in "loading" for good (in CI; the order that did it was not reproduced).
    const drawn = viewport.getCornerstoneImage()?.imageId;
    if (this.state !== "ready" && drawn !== undefined && drawn === this.target && drawn === viewport.getCurrentImageId() && !this.failed.has(drawn)) {
      this.cell.classList.remove("switching");
      this.setState("ready");
    }
    this.describeDisplay();
  }

  private loadFailed(event: CustomEvent<{ imageId?: string; error?: unknown }>): void {
    const imageId = event.detail?.imageId;
    if (imageId === undefined || this.viewport?.hasImageId(imageId) !== true) return;
    const text = messageOf(event.detail.error);
    this.failed.set(imageId, text);
    if (imageId === this.target) this.setState("error", text);
    this.describeAttributes();
  }

  private seriesChanged(token: number): void {
    if (token !== this.token || this.series === null) return;
    this.describeAttributes();
    if (!this.series.complete || this.restacked) return;
    this.restacked = true;
    void this.restack(token);
  }

  /** Swap the provisional stack for the sorted one, keeping the image and how it is shown. */
  private async restack(token: number): Promise<void> {
    const viewport = this.viewport;
    const series = this.series;
    if (viewport === null || series === null) return;
    const imageIds = series.imageIds();
    const current = this.target ?? viewport.getCurrentImageId();
    if (imageIds.length === 0) return;
    if (imageIds.length === viewport.getImageIds().length && imageIds.every((id, i) => id === viewport.getImageIds()[i])) {
      this.finalStack = true;
      this.describeAttributes();
      this.pumpPrefetch(token);
      return;
    }
    let index = current === undefined || current === null ? 0 : imageIds.indexOf(current);
    if (index < 0 && current !== undefined && current !== null) {
      const fileId = parseImageId(current).fileId;
      index = imageIds.findIndex((id) => parseImageId(id).fileId === fileId);
    }
    index = Math.max(0, index);
    const hadImage = viewport.getCurrentImageId() !== undefined;
    const properties = viewport.getProperties();
    const presentation = hadImage ? viewport.getViewPresentation() : null;
    this.target = imageIds[index] ?? null;
    this.cell.dataset.imageCount = String(imageIds.length);
    try {
      await viewport.setStack(imageIds, index);
    } catch (error) {
      if (token === this.token) this.setState("error", messageOf(error));
    }
    if (token !== this.token) return;
    this.finalStack = true;
    if (hadImage) {
      if (properties.voiRange !== undefined && properties.voiRange !== null) viewport.setProperties({ voiRange: properties.voiRange });
      viewport.setProperties({ invert: properties.invert === true });
      if (presentation !== null) viewport.setViewPresentation(presentation);
    }
    viewport.render();
    this.describeAttributes();
    this.pumpPrefetch(token);
  }

  /** Decode the images nearest the current one, a few at a time, while the cache has room. */
  private pumpPrefetch(token: number): void {
    const viewport = this.viewport;
    if (token !== this.token || viewport === null) return;
    const imageIds = viewport.getImageIds();
    if (imageIds.length === 0) return;
    const center = Math.max(0, viewport.getCurrentImageIdIndex());
    const sample = cache.getImage(imageIds[center] ?? "");
    const perImage = sample?.sizeInBytes ?? 0;
    const reach = perImage > 0 ? Math.floor((cache.getMaxCacheSize() * PREFETCH_CACHE_SHARE) / perImage / 2) : 4;
    for (let step = 1; step <= Math.min(reach, imageIds.length) && this.prefetching.size < PREFETCH_IN_FLIGHT; step++) {
      for (const i of [center + step, center - step]) {
        const imageId = imageIds[i];
        if (imageId === undefined || this.prefetching.size >= PREFETCH_IN_FLIGHT) continue;
        if (cache.isLoaded(imageId) || this.prefetching.has(imageId) || this.failed.has(imageId)) continue;
        this.prefetching.add(imageId);
        imageLoader
          .loadAndCacheImage(imageId, { priority: 5, requestType: Enums.RequestType.Prefetch })
          .then(
            () => undefined,
            (error: unknown) => {
              this.failed.set(imageId, messageOf(error));
            },
          )
          .finally(() => {
            this.prefetching.delete(imageId);
            if (token !== this.token) return;
            this.describeLoaded();
            this.pumpPrefetch(token);
          });
      }
    }
  }

  private describeLoaded(): void {
    const imageIds = this.viewport?.getImageIds() ?? [];
    let settled = 0;
    for (const imageId of imageIds) if (cache.isLoaded(imageId) || this.failed.has(imageId)) settled += 1;
    this.cell.dataset.loadedCount = String(settled);
  }

  /** Image index, count, instance and overlay text. */
  describeAttributes(): void {
    const viewport = this.viewport;
    const series = this.series;
    if (viewport === null || series === null) return;
    const imageIds = viewport.getImageIds();
    const imageId = this.target ?? viewport.getCurrentImageId();
    const index = imageId === undefined || imageId === null ? -1 : imageIds.indexOf(imageId);
    this.cell.dataset.imageCount = String(imageIds.length);
    this.cell.dataset.seriesComplete = String(this.finalStack);
    if (index >= 0) this.cell.dataset.imageIndex = String(index);
    const header = imageId === undefined || imageId === null ? undefined : this.store.header(parseImageId(imageId).fileId);
    if (header !== undefined) this.cell.dataset.sopInstanceUid = header.sopInstanceUid;
    const sample = series.sample;
    const title = [sample?.seriesNumber !== null && sample?.seriesNumber !== undefined ? `#${sample.seriesNumber}` : "", sample?.seriesDescription ?? ""]
      .filter(Boolean)
      .join(" ");
    replace(this.topLeft, h("div", {}, title || "Series"), series.complete ? null : h("div", { class: "muted" }, `Reading headers ${series.headersRead}/${series.instances.length}`));
    replace(this.bottomLeft, h("div", { "data-testid": "image-number" }, `Image ${index + 1} / ${imageIds.length}`), h("div", { "data-testid": "window-text" }, this.windowText()));
    this.describeLoaded();
  }

  private windowText(): string {
    const window = this.cell.dataset.window;
    if (window === undefined) return "";
    const [w, c] = window.split("/");
    return `W ${w} L ${c}${this.cell.dataset.invert === "true" ? " · inverted" : ""}`;
  }

  /** Window, invert and where the image sits on the canvas. */
  describeDisplay(): void {
    const viewport = this.viewport;
    if (viewport === null) return;
    const imageId = viewport.getCurrentImageId();
    if (imageId === undefined) return;
    const { voiRange, invert } = viewport.getProperties();
    if (voiRange !== undefined && voiRange !== null) {
      const { windowWidth, windowCenter } = utilities.windowLevel.toWindowLevel(voiRange.lower, voiRange.upper);
      this.cell.dataset.window = `${round(windowWidth)}/${round(windowCenter)}`;
    }
    this.cell.dataset.invert = String(invert === true);
    const image = viewport.getCornerstoneImage();
    if (image !== undefined) {
      try {
        const a = viewport.worldToCanvas(utilities.imageToWorldCoords(imageId, [0, 0]) as Types.Point3);
        const b = viewport.worldToCanvas(utilities.imageToWorldCoords(imageId, [image.columns, image.rows]) as Types.Point3);
        this.cell.dataset.imageRect = [a[0], a[1], b[0], b[1]].map((v) => v.toFixed(2)).join(",");
      } catch {
        // An image without plane geometry has no rectangle to report; the attribute is for tests.
        delete this.cell.dataset.imageRect;
      }
    }
    const number = this.bottomLeft.querySelector("[data-testid=window-text]");
    if (number !== null) number.textContent = this.windowText();
  }

  /** Go to an image of the stack (keyboard, cine). */
  async scrollTo(index: number): Promise<void> {
    const viewport = this.viewport;
    if (viewport === null) return;
    const count = viewport.getImageIds().length;
    if (count === 0) return;
    const clamped = Math.min(Math.max(0, index), count - 1);
    if (clamped === viewport.getCurrentImageIdIndex() && this.target === viewport.getCurrentImageId()) return;
    try {
      await viewport.setImageIdIndex(clamped);
    } catch {
      // The failure reaches the panel through IMAGE_LOAD_ERROR.
    }
  }

  currentIndex(): number {
    const index = Number(this.cell.dataset.imageIndex);
    return Number.isFinite(index) ? index : 0;
  }

  imageCount(): number {
    return this.viewport?.getImageIds().length ?? 0;
  }
}

function round(value: number): string {
  return String(Math.round(value * 10) / 10);
}

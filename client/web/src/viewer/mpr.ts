// The advanced viewer: axial, sagittal and coronal views of a volume built from one CT or MR
// series of parallel slices. The volume is Cornerstone's streaming image volume over the same
// `pacs:` images, so its slices come through the same cache and decoder as the stack views.
// Each view's element carries data-state, data-orientation, data-slice-index/-count and
// data-window like the stack viewports.

import {
  cache,
  Enums,
  eventTarget,
  type RenderingEngine,
  setVolumesForViewports,
  type Types,
  utilities,
  volumeLoader,
} from "@cornerstonejs/core";

import { h } from "../dom";
import { messageOf } from "./instances";
import type { Series } from "./series";

const ORIENTATIONS = [
  { name: "axial", label: "Axial", axis: Enums.OrientationAxis.AXIAL },
  { name: "sagittal", label: "Sagittal", axis: Enums.OrientationAxis.SAGITTAL },
  { name: "coronal", label: "Coronal", axis: Enums.OrientationAxis.CORONAL },
] as const;

export interface MprView {
  cell: HTMLDivElement;
  host: HTMLDivElement;
  viewportId: string;
  orientation: string;
}

export class Mpr {
  readonly element = h("div", { class: "mpr-grid", "data-testid": "mpr", hidden: true });
  readonly views: MprView[] = [];
  private volumeId: string | null = null;
  private activeIndex = 0;
  private token = 0;
  series: Series | null = null;

  constructor(
    private readonly engine: RenderingEngine,
    private readonly toolGroup: { addViewport(viewportId: string, renderingEngineId?: string): void },
  ) {}

  get open(): boolean {
    return this.series !== null;
  }

  get active(): MprView | undefined {
    return this.views[this.activeIndex];
  }

  viewport(view: MprView): Types.IVolumeViewport | null {
    return (this.engine.getViewport(view.viewportId) as Types.IVolumeViewport | undefined) ?? null;
  }

  activate(index: number): void {
    this.activeIndex = index;
    this.views.forEach((view, i) => {
      if (i === index) view.cell.dataset.active = "true";
      else delete view.cell.dataset.active;
    });
  }

  private setState(view: MprView, state: "loading" | "ready" | "error", message = ""): void {
    view.cell.dataset.state = state;
    const box = view.cell.querySelector<HTMLElement>(".viewport-message");
    if (box !== null) {
      box.hidden = message === "";
      box.textContent = message;
      box.classList.toggle("error", state === "error");
    }
  }

  /** Build the volume of `series` and show its three planes (the element must be visible). */
  async show(series: Series): Promise<void> {
    this.close();
    const token = ++this.token;
    this.series = series;
    this.element.hidden = false;
    for (const [index, orientation] of ORIENTATIONS.entries()) {
      const host = h("div", { class: "viewport-host" });
      const cell = h(
        "div",
        { class: "viewport-cell", "data-testid": "mpr-viewport", "data-orientation": orientation.name, "data-state": "loading" },
        host,
        h("div", { class: "viewport-overlay" }, h("div", { class: "overlay-text top-left" }, orientation.label)),
        h("div", { class: "viewport-message", role: "alert" }, "Building the volume…"),
      );
      cell.addEventListener("pointerdown", () => this.activate(index), { capture: true });
      this.element.appendChild(cell);
      this.views.push({ cell, host, viewportId: `mpr-${orientation.name}`, orientation: orientation.name });
    }
    for (const [index, view] of this.views.entries()) {
      this.engine.enableElement({
        viewportId: view.viewportId,
        element: view.host,
        type: Enums.ViewportType.ORTHOGRAPHIC,
        defaultOptions: { orientation: ORIENTATIONS[index]!.axis, background: [0, 0, 0] },
      });
      this.toolGroup.addViewport(view.viewportId, this.engine.id);
      view.host.addEventListener(Enums.Events.VOLUME_NEW_IMAGE, (event) => {
        const detail = (event as CustomEvent<{ imageIndex: number; numberOfSlices: number }>).detail;
        view.cell.dataset.sliceIndex = String(detail.imageIndex);
        view.cell.dataset.sliceCount = String(detail.numberOfSlices);
      });
      view.host.addEventListener(Enums.Events.IMAGE_RENDERED, () => this.describe(view));
      view.host.addEventListener(Enums.Events.VOI_MODIFIED, () => this.describe(view));
    }
    this.activate(0);
    const imageIds = series.imageIds();
    const failures: string[] = [];
    const onError = (event: Event): void => {
      const detail = (event as CustomEvent<{ imageId?: string; error?: unknown }>).detail;
      if (detail?.imageId !== undefined && imageIds.includes(detail.imageId)) failures.push(messageOf(detail.error));
    };
    eventTarget.addEventListener(Enums.Events.IMAGE_LOAD_ERROR, onError);
    try {
      const volumeId = `cornerstoneStreamingImageVolume:mpr-${series.uid}-${token}`;
      this.volumeId = volumeId;
      const volume = await volumeLoader.createAndCacheVolume(volumeId, { imageIds });
      if (token !== this.token) return;
      const loaded = new Promise<void>((resolve) => {
        const done = (event: Event): void => {
          if ((event as CustomEvent<{ volumeId: string }>).detail.volumeId !== volumeId) return;
          eventTarget.removeEventListener(Enums.Events.IMAGE_VOLUME_LOADING_COMPLETED, done);
          resolve();
        };
        eventTarget.addEventListener(Enums.Events.IMAGE_VOLUME_LOADING_COMPLETED, done);
      });
      (volume as Types.IStreamingImageVolume).load();
      await setVolumesForViewports(this.engine, [{ volumeId }], this.views.map((view) => view.viewportId));
      this.engine.renderViewports(this.views.map((view) => view.viewportId));
      await loaded;
      if (token !== this.token) return;
      this.engine.renderViewports(this.views.map((view) => view.viewportId));
      for (const view of this.views) {
        const viewport = this.viewport(view);
        if (viewport !== null) {
          const slice = utilities.getImageSliceDataForVolumeViewport(viewport);
          if (slice !== undefined) {
            view.cell.dataset.sliceIndex = String(slice.imageIndex);
            view.cell.dataset.sliceCount = String(slice.numberOfSlices);
          }
        }
        if (failures.length > 0) this.setState(view, "error", `The volume is incomplete: ${failures[0]}`);
        else this.setState(view, "ready");
      }
    } catch (error) {
      if (token !== this.token) return;
      const text = `The volume could not be built: ${messageOf(error)}`;
      for (const view of this.views) this.setState(view, "error", text);
    } finally {
      eventTarget.removeEventListener(Enums.Events.IMAGE_LOAD_ERROR, onError);
    }
  }

  describe(view: MprView): void {
    const viewport = this.viewport(view);
    if (viewport === null) return;
    const { voiRange, invert } = viewport.getProperties() ?? {};
    if (voiRange !== undefined && voiRange !== null) {
      const { windowWidth, windowCenter } = utilities.windowLevel.toWindowLevel(voiRange.lower, voiRange.upper);
      view.cell.dataset.window = `${Math.round(windowWidth * 10) / 10}/${Math.round(windowCenter * 10) / 10}`;
    }
    view.cell.dataset.invert = String(invert === true);
  }

  close(): void {
    this.token += 1;
    for (const view of this.views) {
      try {
        this.engine.disableElement(view.viewportId);
      } catch {
        // A viewport that never finished enabling has nothing to disable.
      }
    }
    this.views.length = 0;
    this.element.replaceChildren();
    this.element.hidden = true;
    this.series = null;
    if (this.volumeId !== null) {
      // The volume holds a whole series decoded: give the memory back when leaving MPR.
      cache.removeVolumeLoadObject(this.volumeId);
      this.volumeId = null;
    }
  }
}

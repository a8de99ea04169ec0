// The viewer window's screen: header, toolbar, series list, viewport grid (or the MPR views) and
// measurements, and what each control does to the active viewport.

import { type RenderingEngine, type Types, utilities } from "@cornerstonejs/core";

import { confirmDialog } from "../dialogs";
import { formatPersonName, formatStudyDate, h } from "../dom";
import type { StudyView } from "../study-source";
import type { FileCache } from "./cache";
import { Cine } from "./cine";
import { type Instances, messageOf } from "./instances";
import { Layout, type LayoutName } from "./layout";
import { Measurements } from "./measurements";
import { Mpr } from "./mpr";
import type { Series } from "./series";
import { showTagBrowser, tagRows } from "./tags";
import { SeriesList } from "./thumbnails";
import { Toolbar, WINDOW_PRESETS, type WindowPreset } from "./toolbar";
import type { PrimaryTool, Tools } from "./tools";
import type { ViewportPanel } from "./viewport";

// The user manual's troubleshooting line, shown when a tool is used with no image to act on.
export const NO_IMAGE_HINT =
  "Viewer opens but no image is selected: Click an image area or choose a series thumbnail, then retry the viewer tool.";

const STATUS_SECONDS = 10;
const PAGE_STEP = 10;

export interface ViewerParts {
  view: StudyView;
  studyId: string;
  files: FileCache;
  store: Instances;
  series: Series[];
  engine: RenderingEngine;
  tools: Tools;
}

export class Viewer {
  readonly root: HTMLElement;
  readonly layout: Layout;
  readonly mpr: Mpr;
  readonly cine = new Cine();
  readonly measurements = new Measurements();
  readonly seriesList: SeriesList;
  readonly toolbar: Toolbar;
  private readonly status = h("p", { class: "viewer-status", role: "status", "data-testid": "viewer-status" });
  private statusTimer = 0;

  constructor(private readonly parts: ViewerParts) {
    const { view, engine, store, tools } = parts;
    this.toolbar = new Toolbar(
      {
        tool: (tool) => this.chooseTool(tool),
        preset: (preset) => this.applyPreset(preset),
        invert: () => this.invert(),
        reset: () => this.reset(),
        layout: (name) => this.setLayout(name),
        cine: () => this.toggleCine(),
        rate: (rate) => this.cine.setRate(rate),
        tags: () => void this.showTags(),
        mpr: () => void this.toggleMpr(),
        fullscreen: () => void this.toggleFullscreen(),
        download: () => void this.download(),
      },
      { advanced: view.advanced, canDownload: view.canDownload },
    );
    this.layout = new Layout(engine, store, tools.stack, {
      activated: (panel) => this.activated(panel),
      seriesShown: (panel) => {
        if (panel === this.layout.active) this.activated(panel);
      },
      pressedWithoutImage: () => this.hint(NO_IMAGE_HINT),
      removed: (panel) => this.cine.forget(panel),
    });
    this.mpr = new Mpr(engine, tools.mpr);
    this.seriesList = new SeriesList(parts.series, store, (series) => void this.showSeries(series));
    this.cine.onChange(() => this.toolbar.showCine(this.cine.isPlaying(this.layout.active), this.cine.framesPerSecond));
    const viewports = h("main", { class: "viewports" }, this.layout.element, this.mpr.element);
    this.root = h(
      "div",
      { class: "viewer", "data-testid": "viewer" },
      this.header(view),
      this.toolbar.element,
      h("div", { class: "viewer-body" }, this.seriesList.element, viewports, h("aside", { class: "side-panel" }, this.measurements.element)),
      this.status,
    );
    new ResizeObserver(() => engine.resize(true, true)).observe(viewports);
    document.addEventListener("keydown", (event) => this.key(event));
    document.addEventListener("fullscreenchange", () => this.toolbar.showFullscreen(document.fullscreenElement !== null));
    this.toolbar.showTool(tools.primary);
    this.root.dataset.tool = tools.primary;
  }

  private header(view: StudyView): HTMLElement {
    const item = (label: string, value: string, testId: string): HTMLElement =>
      h("div", { class: "header-item" }, h("span", { class: "header-label" }, label), h("span", { "data-testid": testId }, value || "–"));
    return h(
      "header",
      { class: "viewer-header" },
      h("span", { class: "brand" }, "SecurePACS"),
      h("span", { class: "patient-name", "data-testid": "patient-name" }, formatPersonName(view.patientName) || "Unnamed patient"),
      item("Patient ID", view.patientId, "patient-id"),
      item("Study date", formatStudyDate(view.studyDate), "study-date"),
      item("Description", view.studyDescription, "study-description"),
      item("Modalities", view.modalities.join(", "), "modalities"),
    );
  }

  /** Lay out the first viewport and show the first series with images. */
  async start(openMpr: boolean): Promise<void> {
    this.setLayout("1x1");
    void this.seriesList.load();
    for (const series of this.parts.series) {
      const first = await series.firstImage("interaction");
      if (first !== null || series.failures.size > 0) {
        await this.layout.active.show(series);
        if (openMpr && this.parts.view.advanced) {
          await series.loadAll();
          const problem = series.mprProblem();
          if (problem === null) await this.toggleMpr();
          else this.hint(`The advanced viewer opened the series as a stack: ${problem}`);
        }
        return;
      }
    }
    this.hint("This study has no images to display.");
  }

  hint(text: string): void {
    this.status.textContent = text;
    window.clearTimeout(this.statusTimer);
    this.statusTimer = window.setTimeout(() => (this.status.textContent = ""), STATUS_SECONDS * 1000);
  }

  private activated(panel: ViewportPanel): void {
    this.seriesList.select(panel.series);
    this.toolbar.showInvert(panel.cell.dataset.invert === "true");
    this.toolbar.showCine(this.cine.isPlaying(panel), this.cine.isPlaying(panel) ? this.cine.framesPerSecond : this.cine.suggestedRate(panel));
  }

  private async showSeries(series: Series): Promise<void> {
    if (this.mpr.open) this.closeMpr();
    const panel = this.layout.active;
    this.cine.forget(panel);
    await panel.show(series);
    this.seriesList.select(series);
  }

  private setLayout(name: LayoutName): void {
    if (this.mpr.open) this.closeMpr();
    const added = this.layout.setLayout(name);
    this.toolbar.showLayout(name);
    // New viewports show the series not on screen yet, in list order.
    const shown = new Set(this.layout.panels.map((panel) => panel.series).filter((s) => s !== null));
    const waiting = this.seriesList.ordered().filter((series) => !shown.has(series) && !series.nonImageOnly);
    for (const panel of added) {
      const next = waiting.shift();
      if (next !== undefined) void panel.show(next);
    }
  }

  private chooseTool(tool: PrimaryTool): void {
    this.parts.tools.setPrimary(tool);
    this.toolbar.showTool(tool);
    this.root.dataset.tool = tool;
    if (!this.hasTarget()) this.hint(NO_IMAGE_HINT);
  }

  /** Whether the toolbar's actions have an image to act on; if not, says so. */
  private hasTarget(): boolean {
    if (this.mpr.open) return this.mpr.views.length > 0;
    return this.layout.active.hasImage;
  }

  /** The viewports a presentation change applies to: the active one, or all three MPR views. */
  private targets(): (Types.IStackViewport | Types.IVolumeViewport)[] {
    if (this.mpr.open) return this.mpr.views.map((view) => this.mpr.viewport(view)).filter((v) => v !== null);
    const viewport = this.layout.active.viewport;
    return viewport !== null && this.layout.active.hasImage ? [viewport] : [];
  }

  private withTargets(action: (viewport: Types.IStackViewport | Types.IVolumeViewport) => void): boolean {
    const targets = this.targets();
    if (targets.length === 0) {
      this.hint(NO_IMAGE_HINT);
      return false;
    }
    for (const viewport of targets) {
      action(viewport);
      viewport.render();
    }
    return true;
  }

  private applyPreset(preset: WindowPreset): void {
    this.withTargets((viewport) => {
      const invert = viewport.getProperties()?.invert === true;
      if (preset === "default") {
        // The file's own window (or Cornerstone's from the pixel range when it has none).
        viewport.resetProperties();
        viewport.setProperties({ invert });
      } else {
        const { width, center } = WINDOW_PRESETS[preset];
        viewport.setProperties({ voiRange: utilities.windowLevel.toLowHighRange(width, center) });
      }
    });
  }

  private invert(): void {
    let inverted = false;
    this.withTargets((viewport) => {
      inverted = viewport.getProperties()?.invert !== true;
      viewport.setProperties({ invert: inverted });
    });
    this.toolbar.showInvert(inverted);
  }

  private reset(): void {
    this.withTargets((viewport) => {
      viewport.resetProperties();
      viewport.resetCamera();
    });
    this.toolbar.showInvert(false);
    this.toolbar.presetSelect.value = "";
  }

  private toggleCine(): void {
    const panel = this.layout.active;
    if (this.cine.isPlaying(panel)) {
      this.cine.stop();
      return;
    }
    if (this.mpr.open || !panel.hasImage) {
      this.hint(this.mpr.open ? "Cine plays in the stack viewports: leave MPR first." : NO_IMAGE_HINT);
      return;
    }
    if (panel.imageCount() < 2) {
      this.hint("This image has a single frame: there is nothing to play.");
      return;
    }
    const typed = Number(this.toolbar.rateInput.value);
    this.cine.play(panel, Number.isFinite(typed) && typed > 0 ? typed : this.cine.suggestedRate(panel));
  }

  private async showTags(): Promise<void> {
    const fileId = this.mpr.open ? (this.mpr.series?.instances[0]?.fileId ?? null) : this.layout.active.currentFileId();
    if (fileId === null || (!this.mpr.open && this.layout.active.state === "empty")) {
      this.hint(NO_IMAGE_HINT);
      return;
    }
    const name = this.parts.store.describe(fileId);
    let rows;
    try {
      rows = tagRows(await this.parts.files.get(fileId, "interaction"));
    } catch (error) {
      this.hint(`The header of ${name} could not be read: ${messageOf(error)}`);
      return;
    }
    await showTagBrowser(`DICOM tags · ${name}`, rows);
  }

  private closeMpr(): void {
    this.mpr.close();
    this.layout.element.hidden = false;
    this.toolbar.showMpr(false);
    this.parts.engine.resize(true, true);
  }

  private async toggleMpr(): Promise<void> {
    if (this.mpr.open) {
      this.closeMpr();
      return;
    }
    if (!this.parts.view.advanced) return;
    const series = this.layout.active.series;
    if (series === null) {
      this.hint(NO_IMAGE_HINT);
      return;
    }
    if (!series.complete) {
      this.hint("Reading the series before building the volume…");
      await series.loadAll();
    }
    const problem = series.mprProblem();
    if (problem !== null) {
      this.hint(problem);
      return;
    }
    this.cine.stop();
    this.layout.element.hidden = true;
    this.toolbar.showMpr(true);
    await this.mpr.show(series);
  }

  private async toggleFullscreen(): Promise<void> {
    try {
      if (document.fullscreenElement !== null) await document.exitFullscreen();
      else await this.root.requestFullscreen();
    } catch (error) {
      this.hint(`Fullscreen is not available here: ${messageOf(error)}`);
    }
  }

  private async download(): Promise<void> {
    if (!this.parts.view.canDownload) return;
    const yes = await confirmDialog(
      "Download study",
      "Download this study as a zip? It is decrypted in your browser and saved by a download window: keep that window open until your browser has saved the file.",
      "Download",
    );
    if (!yes) return;
    // Not noopener: the download window asks this window for its study port.
    const child = window.open(`/download#${this.parts.studyId}`, "_blank");
    if (child === null) this.hint("Your browser blocked the download window. Allow popups for SecurePACS, then use Download again.");
  }

  private key(event: KeyboardEvent): void {
    const target = event.target as HTMLElement | null;
    if (target !== null && (target.closest("input, select, textarea, dialog") !== null || document.querySelector("dialog[open]") !== null)) return;
    const steps: Record<string, number> = { ArrowUp: -1, ArrowDown: 1, PageUp: -PAGE_STEP, PageDown: PAGE_STEP };
    if (!(event.key in steps) && event.key !== "Home" && event.key !== "End") return;
    event.preventDefault();
    if (this.mpr.open) {
      this.scrollMpr(event.key, steps[event.key]);
      return;
    }
    const panel = this.layout.active;
    if (panel.imageCount() === 0) {
      this.hint(NO_IMAGE_HINT);
      return;
    }
    const index = event.key === "Home" ? 0 : event.key === "End" ? panel.imageCount() - 1 : panel.currentIndex() + (steps[event.key] ?? 0);
    void panel.scrollTo(index);
  }

  private scrollMpr(key: string, step: number | undefined): void {
    const view = this.mpr.active;
    const viewport = view === undefined ? null : this.mpr.viewport(view);
    if (viewport === null) return;
    const slice = utilities.getImageSliceDataForVolumeViewport(viewport);
    if (slice === undefined) return;
    const index = key === "Home" ? 0 : key === "End" ? slice.numberOfSlices - 1 : slice.imageIndex + (step ?? 0);
    void utilities.jumpToSlice(viewport.element, { imageIndex: Math.min(Math.max(0, index), slice.numberOfSlices - 1) });
  }
}

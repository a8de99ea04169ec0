// The measurements list: every length, angle and rectangle drawn, with its value in the units
// Cornerstone computed from the image's pixel spacing (mm when the file has it). Values also sit
// in data attributes, so a test reads the number rather than parsing the text.

import { eventTarget, getRenderingEngines } from "@cornerstonejs/core";
import { annotation, Enums as ToolEnums, type Types as ToolTypes } from "@cornerstonejs/tools";

import { h, replace } from "../dom";
import { MEASUREMENT_TOOLS } from "./tools";

const LABELS: Record<string, string> = { Length: "Length", Angle: "Angle", RectangleROI: "Rectangle" };

interface Stats {
  length?: number;
  unit?: string;
  angle?: number | string;
  area?: number;
  areaUnit?: string;
  mean?: number;
  modalityUnit?: string;
}

function firstStats(entry: ToolTypes.Annotation): Stats | undefined {
  const cached = (entry.data as { cachedStats?: Record<string, Stats> }).cachedStats;
  return cached === undefined ? undefined : Object.values(cached)[0];
}

function fixed(value: number | undefined, digits = 1): string {
  return value === undefined || !Number.isFinite(value) ? "–" : value.toFixed(digits);
}

/** The value as shown, and the number behind it. */
function describeMeasurement(tool: string, stats: Stats | undefined): { text: string; value: number | null; unit: string } {
  if (tool === "Length") {
    const unit = stats?.unit ?? "mm";
    return { text: `${fixed(stats?.length)} ${unit}`, value: stats?.length ?? null, unit };
  }
  if (tool === "Angle") {
    const angle = typeof stats?.angle === "number" ? stats.angle : undefined;
    return { text: angle === undefined ? "incomplete" : `${fixed(angle)}°`, value: angle ?? null, unit: "°" };
  }
  const unit = stats?.areaUnit ?? "mm²";
  const mean = stats?.mean === undefined ? "" : `, mean ${fixed(stats.mean)} ${stats.modalityUnit ?? ""}`.trimEnd();
  return { text: `area ${fixed(stats?.area)} ${unit}${mean}`, value: stats?.area ?? null, unit };
}

export class Measurements {
  readonly element: HTMLElement;
  private readonly list = h("ol", { class: "measurement-list", "data-testid": "measurements" });
  private readonly empty = h("p", { class: "hint" }, "No measurements. Choose Length, Angle or Rectangle, then draw on an image.");
  private readonly numbers = new Map<string, number>();
  private counter = 0;

  constructor() {
    const clear = h("button", { type: "button", class: "small", title: "Remove every measurement", onclick: () => this.clear() }, "Clear all");
    this.element = h("section", { class: "measurements", "aria-label": "Measurements" }, h("div", { class: "panel-title" }, h("h2", {}, "Measurements"), clear), this.empty, this.list);
    const refresh = (): void => this.refresh();
    for (const name of [ToolEnums.Events.ANNOTATION_COMPLETED, ToolEnums.Events.ANNOTATION_MODIFIED, ToolEnums.Events.ANNOTATION_REMOVED]) {
      eventTarget.addEventListener(name, refresh);
    }
  }

  refresh(): void {
    const entries = annotation.state.getAllAnnotations().filter((entry) => MEASUREMENT_TOOLS.has(entry.metadata?.toolName ?? ""));
    const items = entries.map((entry) => {
      const tool = entry.metadata?.toolName ?? "";
      const uid = entry.annotationUID ?? "";
      let number = this.numbers.get(uid);
      if (number === undefined) {
        this.counter += 1;
        number = this.counter;
        this.numbers.set(uid, number);
      }
      const label = `${LABELS[tool] ?? tool} ${number}`;
      const shown = describeMeasurement(tool, firstStats(entry));
      const remove = h("button", { type: "button", class: "small", "aria-label": `Remove ${label}`, onclick: () => this.remove(uid) }, "×");
      return h(
        "li",
        { "data-testid": "measurement", "data-tool": tool, "data-value": shown.value === null ? "" : String(shown.value), "data-unit": shown.unit },
        h("span", { class: "measurement-label" }, label),
        h("span", { class: "measurement-value" }, shown.text),
        remove,
      );
    });
    replace(this.list, ...items);
    this.empty.hidden = items.length > 0;
  }

  private remove(uid: string): void {
    annotation.state.removeAnnotation(uid);
    this.redraw();
    this.refresh();
  }

  clear(): void {
    for (const entry of annotation.state.getAllAnnotations()) {
      if (MEASUREMENT_TOOLS.has(entry.metadata?.toolName ?? "") && entry.annotationUID !== undefined) annotation.state.removeAnnotation(entry.annotationUID);
    }
    this.redraw();
    this.refresh();
  }

  private redraw(): void {
    for (const engine of getRenderingEngines() ?? []) engine.render();
  }
}

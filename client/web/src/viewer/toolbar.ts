// The toolbar across the top of the viewer. It only draws the controls and reports what was
// chosen; the viewer decides what each choice does and tells the toolbar which controls apply.

import { h } from "../dom";
import { DEFAULT_FRAMES_PER_SECOND, MAX_FRAMES_PER_SECOND } from "./cine";
import { LAYOUTS, type LayoutName } from "./layout";
import { PRIMARY_TOOLS, type PrimaryTool } from "./tools";

/** Window presets (width/center in the image's units, HU for CT). */
export const WINDOW_PRESETS = {
  "soft-tissue": { label: "Soft tissue", width: 400, center: 40 },
  lung: { label: "Lung", width: 1500, center: -600 },
  bone: { label: "Bone", width: 2000, center: 300 },
  brain: { label: "Brain", width: 80, center: 40 },
} as const;

export type WindowPreset = keyof typeof WINDOW_PRESETS | "default";

export interface ToolbarActions {
  tool(tool: PrimaryTool): void;
  preset(preset: WindowPreset): void;
  invert(): void;
  reset(): void;
  layout(name: LayoutName): void;
  cine(): void;
  rate(framesPerSecond: number): void;
  tags(): void;
  mpr(): void;
  fullscreen(): void;
  download(): void;
}

export class Toolbar {
  readonly element: HTMLElement;
  private readonly toolButtons = new Map<PrimaryTool, HTMLButtonElement>();
  private readonly layoutButtons = new Map<LayoutName, HTMLButtonElement>();
  readonly presetSelect: HTMLSelectElement;
  readonly invertButton: HTMLButtonElement;
  readonly cineButton: HTMLButtonElement;
  readonly rateInput: HTMLInputElement;
  readonly mprButton: HTMLButtonElement;
  readonly fullscreenButton: HTMLButtonElement;
  readonly downloadButton: HTMLButtonElement;

  constructor(actions: ToolbarActions, options: { advanced: boolean; canDownload: boolean }) {
    const tools = h("div", { class: "tool-group", role: "group", "aria-label": "Mouse tool" });
    for (const [name, { label, hint }] of Object.entries(PRIMARY_TOOLS)) {
      const button = h("button", { type: "button", title: hint, "aria-pressed": "false", onclick: () => actions.tool(name as PrimaryTool) }, label);
      this.toolButtons.set(name as PrimaryTool, button);
      tools.appendChild(button);
    }
    this.presetSelect = h(
      "select",
      { "aria-label": "Window preset", title: "Window width/level presets" },
      h("option", { value: "", disabled: true, selected: true }, "W/L preset…"),
      h("option", { value: "default" }, "Default (from the file)"),
      ...Object.entries(WINDOW_PRESETS).map(([key, preset]) => h("option", { value: key }, `${preset.label} ${preset.width}/${preset.center}`)),
    );
    this.presetSelect.addEventListener("change", () => {
      const value = this.presetSelect.value as WindowPreset | "";
      if (value !== "") actions.preset(value);
    });
    this.invertButton = h("button", { type: "button", "aria-pressed": "false", title: "Invert the grey scale", onclick: () => actions.invert() }, "Invert");
    const reset = h("button", { type: "button", title: "Reset zoom, pan, window and invert", onclick: () => actions.reset() }, "Reset");
    const layouts = h("div", { class: "tool-group", role: "group", "aria-label": "Layout" });
    for (const name of Object.keys(LAYOUTS) as LayoutName[]) {
      const button = h("button", { type: "button", "aria-label": `Layout ${name}`, "aria-pressed": "false", onclick: () => actions.layout(name) }, name.replace("x", "×"));
      this.layoutButtons.set(name, button);
      layouts.appendChild(button);
    }
    this.cineButton = h("button", { type: "button", title: "Play the frames or images in a loop", onclick: () => actions.cine() }, "Play");
    this.rateInput = h("input", {
      type: "number",
      min: 1,
      max: MAX_FRAMES_PER_SECOND,
      step: 1,
      value: DEFAULT_FRAMES_PER_SECOND,
      class: "rate",
      "aria-label": "Frames per second",
      title: "Cine frame rate (frames per second)",
    });
    this.rateInput.addEventListener("change", () => {
      const rate = Number(this.rateInput.value);
      if (Number.isFinite(rate) && rate > 0) actions.rate(rate);
    });
    const tags = h("button", { type: "button", title: "Show the DICOM header of the image", onclick: () => actions.tags() }, "Tags");
    this.mprButton = h(
      "button",
      {
        type: "button",
        "aria-pressed": "false",
        disabled: !options.advanced,
        title: options.advanced
          ? "Axial, sagittal and coronal views of a CT or MR series"
          : "MPR (the advanced viewer) is not included in your plan.",
        onclick: () => actions.mpr(),
      },
      "MPR",
    );
    this.fullscreenButton = h("button", { type: "button", "aria-pressed": "false", title: "Use the whole screen", onclick: () => actions.fullscreen() }, "Fullscreen");
    this.downloadButton = h(
      "button",
      {
        type: "button",
        disabled: !options.canDownload,
        title: options.canDownload ? "Download the study as a zip file" : "Downloading is not allowed for this study: its owner shared it without the Download permission.",
        onclick: () => actions.download(),
      },
      "Download",
    );
    this.element = h(
      "div",
      { class: "viewer-toolbar", role: "toolbar", "aria-label": "Viewer tools" },
      tools,
      h("div", { class: "tool-group" }, this.presetSelect, this.invertButton, reset),
      layouts,
      h("div", { class: "tool-group" }, this.cineButton, this.rateInput, h("span", { class: "unit" }, "fps")),
      h("div", { class: "tool-group" }, tags, this.mprButton, this.fullscreenButton, this.downloadButton),
    );
  }

  showTool(tool: PrimaryTool): void {
    for (const [name, button] of this.toolButtons) button.setAttribute("aria-pressed", String(name === tool));
  }

  showLayout(name: LayoutName): void {
    for (const [each, button] of this.layoutButtons) button.setAttribute("aria-pressed", String(each === name));
  }

  showInvert(inverted: boolean): void {
    this.invertButton.setAttribute("aria-pressed", String(inverted));
  }

  showCine(playing: boolean, framesPerSecond: number): void {
    this.cineButton.textContent = playing ? "Pause" : "Play";
    this.cineButton.setAttribute("aria-pressed", String(playing));
    if (Number(this.rateInput.value) !== framesPerSecond) this.rateInput.value = String(framesPerSecond);
  }

  showMpr(open: boolean): void {
    this.mprButton.setAttribute("aria-pressed", String(open));
  }

  showFullscreen(on: boolean): void {
    this.fullscreenButton.setAttribute("aria-pressed", String(on));
    this.fullscreenButton.textContent = on ? "Exit fullscreen" : "Fullscreen";
  }
}

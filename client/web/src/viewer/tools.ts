// The mouse tools. The toolbar chooses what the left button does; the other bindings stay fixed:
// middle button pans, right button zooms, the wheel scrolls through the images. Stack viewports
// and the MPR's volume viewports have a tool group each, kept on the same choice.

import { Settings } from "@cornerstonejs/core";
import {
  addTool,
  AngleTool,
  Enums as ToolEnums,
  init as initTools,
  LengthTool,
  PanTool,
  RectangleROITool,
  StackScrollTool,
  ToolGroupManager,
  type Types as ToolTypes,
  WindowLevelTool,
  ZoomTool,
} from "@cornerstonejs/tools";

const { MouseBindings } = ToolEnums;

export const PRIMARY_TOOLS = {
  WindowLevel: { tool: WindowLevelTool, label: "Window/Level", hint: "Drag to change window width (left/right) and level (up/down)" },
  Pan: { tool: PanTool, label: "Pan", hint: "Drag to move the image" },
  Zoom: { tool: ZoomTool, label: "Zoom", hint: "Drag up or down to zoom" },
  StackScroll: { tool: StackScrollTool, label: "Scroll", hint: "Drag up or down to move through the images" },
  Length: { tool: LengthTool, label: "Length", hint: "Click two points to measure a distance in mm" },
  Angle: { tool: AngleTool, label: "Angle", hint: "Click three points to measure an angle" },
  RectangleROI: { tool: RectangleROITool, label: "Rectangle", hint: "Drag a rectangle to measure its area and mean" },
} as const;

export type PrimaryTool = keyof typeof PRIMARY_TOOLS;

export const MEASUREMENT_TOOLS: ReadonlySet<string> = new Set([LengthTool.toolName, AngleTool.toolName, RectangleROITool.toolName]);

const FIXED_BINDINGS: Partial<Record<PrimaryTool, ToolTypes.IToolBinding[]>> = {
  Pan: [{ mouseButton: MouseBindings.Auxiliary }],
  Zoom: [{ mouseButton: MouseBindings.Secondary }],
  StackScroll: [{ mouseButton: MouseBindings.Wheel }],
};

let registered = false;

export class Tools {
  readonly stack: ToolTypes.IToolGroup;
  readonly mpr: ToolTypes.IToolGroup;
  private current: PrimaryTool = "WindowLevel";

  constructor() {
    if (!registered) {
      // Cornerstone's tool cursors are SVG images behind blob: URLs, which the page's CSP does
      // not allow as images (img-src falls back to 'self'); viewer.css gives each tool a
      // standard cursor instead.
      Settings.getRuntimeSettings().set("useCursors", false);
      initTools();
      for (const { tool } of Object.values(PRIMARY_TOOLS)) addTool(tool);
      registered = true;
    }
    this.stack = Tools.group("viewer-stack");
    this.mpr = Tools.group("viewer-mpr");
    this.setPrimary("WindowLevel");
  }

  private static group(id: string): ToolTypes.IToolGroup {
    const group = ToolGroupManager.getToolGroup(id) ?? ToolGroupManager.createToolGroup(id);
    if (group === undefined) throw new Error(`The tool group ${id} could not be created.`);
    for (const [name, { tool }] of Object.entries(PRIMARY_TOOLS)) {
      group.addTool(tool.toolName);
      const fixed = FIXED_BINDINGS[name as PrimaryTool];
      if (fixed !== undefined) group.setToolActive(tool.toolName, { bindings: fixed });
      else group.setToolPassive(tool.toolName);
    }
    return group;
  }

  get primary(): PrimaryTool {
    return this.current;
  }

  /** Give the left button to `tool`; the one that had it keeps only its fixed binding. */
  setPrimary(tool: PrimaryTool): void {
    const previous = PRIMARY_TOOLS[this.current].tool.toolName;
    const next = PRIMARY_TOOLS[tool].tool.toolName;
    for (const group of [this.stack, this.mpr]) {
      if (previous !== next) group.setToolPassive(previous);
      group.setToolActive(next, { bindings: [{ mouseButton: MouseBindings.Primary }] });
    }
    this.current = tool;
  }
}

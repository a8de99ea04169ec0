// The viewport grid: 1x1, 1x2 or 2x2 stack viewports, one of them active (outlined). Clicking a
// viewport makes it active; the series list and the toolbar act on the active one.

import type { RenderingEngine } from "@cornerstonejs/core";

import { h } from "../dom";
import type { Instances } from "./instances";
import { ViewportPanel } from "./viewport";

export const LAYOUTS = { "1x1": 1, "1x2": 2, "2x2": 4 } as const;
export type LayoutName = keyof typeof LAYOUTS;

export class Layout {
  readonly element = h("div", { class: "viewport-grid layout-1x1", "data-testid": "viewport-grid", "data-layout": "1x1" });
  readonly panels: ViewportPanel[] = [];
  private activeIndex = 0;
  private current: LayoutName = "1x1";

  constructor(
    private readonly engine: RenderingEngine,
    private readonly store: Instances,
    private readonly toolGroup: { addViewport(viewportId: string, renderingEngineId?: string): void },
    private readonly events: {
      activated: (panel: ViewportPanel) => void;
      seriesShown: (panel: ViewportPanel) => void;
      pressedWithoutImage: (panel: ViewportPanel) => void;
      removed: (panel: ViewportPanel) => void;
    },
  ) {}

  get name(): LayoutName {
    return this.current;
  }

  get active(): ViewportPanel {
    return this.panels[this.activeIndex]!;
  }

  /** Switch the grid; returns the panels it added, which are empty. */
  setLayout(name: LayoutName): ViewportPanel[] {
    const count = LAYOUTS[name];
    this.current = name;
    this.element.className = `viewport-grid layout-${name}`;
    this.element.dataset.layout = name;
    const added: ViewportPanel[] = [];
    while (this.panels.length > count) {
      const panel = this.panels.pop()!;
      this.events.removed(panel);
      panel.disable();
      panel.cell.remove();
    }
    while (this.panels.length < count) {
      const panel = new ViewportPanel(this.panels.length, this.engine, this.store, (shown) => this.events.seriesShown(shown));
      panel.cell.addEventListener("pointerdown", () => {
        this.activate(panel);
        if (!panel.hasImage && panel.state !== "loading") this.events.pressedWithoutImage(panel);
      }, { capture: true });
      this.panels.push(panel);
      this.element.appendChild(panel.cell);
      added.push(panel);
    }
    // Cornerstone sizes its canvases from the elements: enable only once they are laid out.
    this.engine.resize(true, true);
    for (const panel of added) panel.enable(this.toolGroup);
    this.activate(this.panels[Math.min(this.activeIndex, count - 1)]!);
    return added;
  }

  activate(panel: ViewportPanel): void {
    this.activeIndex = Math.max(0, this.panels.indexOf(panel));
    for (const each of this.panels) each.setActive(each === panel);
    this.events.activated(panel);
  }
}

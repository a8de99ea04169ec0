// Cine: play the frames of a multi-frame file, or the images of a stack, in a loop at a chosen
// rate. One viewport plays at a time; the rate starts at what the file suggests (Cine Rate or
// Frame Time) and the toolbar's rate box changes it while playing.

import { utilities as toolUtilities } from "@cornerstonejs/tools";

import type { ViewportPanel } from "./viewport";

export const DEFAULT_FRAMES_PER_SECOND = 10;
export const MAX_FRAMES_PER_SECOND = 60;

export class Cine {
  private playing: ViewportPanel | null = null;
  private rate = DEFAULT_FRAMES_PER_SECOND;
  private readonly listeners = new Set<() => void>();

  onChange(listener: () => void): void {
    this.listeners.add(listener);
  }

  private changed(): void {
    for (const listener of this.listeners) listener();
  }

  get framesPerSecond(): number {
    return this.rate;
  }

  isPlaying(panel: ViewportPanel | null): boolean {
    return panel !== null && this.playing === panel;
  }

  /** The rate a panel's current file suggests, or the default. */
  suggestedRate(panel: ViewportPanel): number {
    const rate = panel.currentHeader()?.cineRate;
    return rate === null || rate === undefined ? DEFAULT_FRAMES_PER_SECOND : Math.min(MAX_FRAMES_PER_SECOND, Math.max(1, Math.round(rate)));
  }

  play(panel: ViewportPanel, framesPerSecond: number): void {
    this.stop();
    this.rate = Math.min(MAX_FRAMES_PER_SECOND, Math.max(1, framesPerSecond));
    toolUtilities.cine.playClip(panel.host, { framesPerSecond: this.rate, loop: true });
    this.playing = panel;
    panel.cell.dataset.cine = "playing";
    this.changed();
  }

  /** A new rate takes effect at once when playing. */
  setRate(framesPerSecond: number): void {
    this.rate = Math.min(MAX_FRAMES_PER_SECOND, Math.max(1, framesPerSecond));
    if (this.playing !== null) this.play(this.playing, this.rate);
  }

  stop(): void {
    const panel = this.playing;
    if (panel === null) return;
    toolUtilities.cine.stopClip(panel.host);
    delete panel.cell.dataset.cine;
    this.playing = null;
    this.changed();
  }

  /** A panel that shows something else, or goes away, stops playing. */
  forget(panel: ViewportPanel): void {
    if (this.playing === panel) this.stop();
  }
}

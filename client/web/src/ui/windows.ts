// The viewer and download windows this tab opened (user manual, "View Studies" and "Download
// from the viewer"): opening them, answering their request for a study port, and the list the
// Viewer tab shows. A window gets a port only for the study in its own address and only while
// this tab is unlocked; the port leads to this tab's worker, which holds the keys.

import { confirmDialog, openDialog } from "../dialogs";
import { formatPersonName, formatStudyDate, h } from "../dom";
import type { Runtime } from "../rpc";
import { serveChildren, type WindowKind } from "../study-source";

export interface StudyLabel {
  study_id: string;
  patient_name: string;
  study_date: string;
  study_description: string;
}

export interface OpenWindow {
  kind: WindowKind;
  study: StudyLabel;
  window: Window;
  advanced: boolean;
  openedAt: Date;
}

const BLOCKED =
  "Your browser blocked the new window. Allow popups for SecurePACS (the icon at the end of the address bar), then use Open in new Window again.";

export function describe(study: StudyLabel): string {
  const parts = [formatPersonName(study.patient_name) || "Unnamed patient"];
  if (study.study_date) parts.push(formatStudyDate(study.study_date));
  if (study.study_description) parts.push(study.study_description);
  return parts.join(" · ");
}

export class Windows {
  private readonly open = new Set<OpenWindow>();
  private readonly listeners = new Set<() => void>();

  constructor(private readonly runtime: Runtime) {
    serveChildren(async (hello, child) => {
      const known = [...this.open].some((w) => w.window === child && w.study.study_id === hello.studyId);
      if (!known) {
        throw new Error("This window was not opened from this SecurePACS tab. Open the study again from the Studies tab.");
      }
      return this.runtime.studyPort(hello.studyId, hello.window);
    }, true);
    // A closed window leaves the list the next time someone looks (the Viewer tab polls).
    window.addEventListener("focus", () => this.prune());
  }

  /** The windows still open, newest first. */
  list(): OpenWindow[] {
    this.prune();
    return [...this.open].reverse();
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(): void {
    for (const listener of this.listeners) listener();
  }

  private prune(): void {
    let removed = false;
    for (const entry of this.open) {
      if (entry.window.closed) {
        this.open.delete(entry);
        removed = true;
      }
    }
    if (removed) this.changed();
  }

  /** Open the viewer (with MPR first when `advanced`); a blocked popup gets the manual's advice. */
  openViewer(study: StudyLabel, advanced = false): void {
    this.openWindow("viewer", study, advanced);
  }

  /** Ask, then open the download window. */
  async openDownload(study: StudyLabel): Promise<void> {
    const yes = await confirmDialog(
      "Download as zip",
      `Download the study of ${describe(study)} as a zip file? It is decrypted in your browser. A download window opens: keep it open until your browser has saved the file.`,
      "Download",
    );
    if (yes) this.openWindow("download", study, false);
  }

  private openWindow(kind: WindowKind, study: StudyLabel, advanced: boolean): void {
    // The same study in the same kind of window is brought forward instead of opened twice.
    for (const entry of this.open) {
      if (!entry.window.closed && entry.kind === kind && entry.study.study_id === study.study_id && entry.advanced === advanced) {
        entry.window.focus();
        return;
      }
    }
    const path = kind === "viewer" ? "/viewer" : "/download";
    const fragment = advanced ? `${study.study_id}/mpr` : study.study_id;
    // Not noopener: the child needs `window.opener` to ask this tab for its study port.
    const child = window.open(`${path}#${fragment}`, "_blank");
    if (child === null) {
      void openDialog("Allow popups", [h("p", {}, BLOCKED)], [{ label: "OK", value: "ok", primary: true }], { testId: "popup-blocked" });
      return;
    }
    this.open.add({ kind, study, window: child, advanced, openedAt: new Date() });
    this.changed();
  }

  /** Close every window (sign-out: their ports stop answering anyway). */
  closeAll(): void {
    for (const entry of this.open) entry.window.close();
    this.open.clear();
    this.changed();
  }
}

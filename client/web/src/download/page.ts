// What the download window shows: the study, the warning to keep the page open, Start and
// Cancel, the progress and how it ended. It knows nothing of streams; main.ts drives it.

import { formatBytes, formatDuration, formatPersonName, formatStudyDate, h, replace } from "../dom";
import type { StudyView } from "../study-source";

export interface Snapshot {
  filesDone: number;
  filesTotal: number;
  bytes: number;
  bytesTotal: number;
  bytesPerSecond: number;
  elapsedSeconds: number;
}

const WARNING = "Keep this page open until your browser has saved the file. Closing it cancels the download.";

export class DownloadPage {
  private readonly study = h("dl", { class: "properties", "data-testid": "download-study" });
  private readonly start = h("button", { type: "button", class: "primary", disabled: true }, "Start download");
  private readonly cancel = h("button", { type: "button", hidden: true }, "Cancel");
  private readonly reason = h("p", { class: "hint", "data-testid": "download-reason", hidden: true });
  private readonly bar = h("progress", { max: 1000, value: 0, "aria-label": "Download progress" });
  private readonly percent = h("span", { "data-testid": "download-percent" }, "0 %");
  private readonly counts = h("dl", { class: "counts", "data-testid": "download-counts" });
  private readonly progress = h("section", { class: "download-progress", "data-testid": "download-progress", hidden: true }, h("div", { class: "download-bar" }, this.bar, this.percent), this.counts);
  private readonly hint = h("p", { class: "hint", "data-testid": "download-hint", hidden: true });
  private readonly status = h("p", { class: "message", role: "status", "data-testid": "download-status" });
  private readonly controls = h("div", { class: "actions" }, this.start, this.cancel);
  private readonly warning = h("p", { class: "warning" }, WARNING);

  constructor(root: HTMLElement) {
    replace(
      root,
      h(
        "main",
        { class: "card download" },
        h("p", { class: "brand" }, "SecurePACS"),
        h("h1", {}, "Download study"),
        this.study,
        this.warning,
        this.controls,
        this.reason,
        this.progress,
        this.hint,
        this.status,
      ),
    );
    this.say("Connecting to the SecurePACS window that opened this page…");
  }

  onStart(action: () => void): void {
    this.start.addEventListener("click", action);
  }

  onCancel(action: () => void): void {
    this.cancel.addEventListener("click", action);
  }

  /** Nothing can be downloaded from here: no study, no opener, or the study did not open. */
  fatal(message: string): void {
    this.study.hidden = true;
    this.warning.hidden = true;
    this.controls.hidden = true;
    this.say(message, true);
  }

  showStudy(view: StudyView): void {
    const total = view.instances.reduce((sum, instance) => sum + instance.size, 0);
    const files = view.instances.length;
    const row = (label: string, value: string): Node[] => [h("dt", {}, label), h("dd", {}, value || "—")];
    replace(
      this.study,
      ...row("Patient", formatPersonName(view.patientName)),
      ...row("Study date", formatStudyDate(view.studyDate)),
      ...row("Description", view.studyDescription),
      ...row("Files", `${files} ${files === 1 ? "file" : "files"}, ${formatBytes(total)}`),
      ...row("Saved as", view.zipName),
    );
    document.title = `Download ${formatPersonName(view.patientName) || "study"} – SecurePACS`;
    this.say("");
  }

  /** Start stays disabled, with the reason and what to do about it. */
  blocked(reason: string): void {
    this.start.disabled = true;
    this.reason.hidden = false;
    this.reason.textContent = reason;
  }

  ready(): void {
    this.start.disabled = false;
    this.reason.hidden = true;
  }

  running(snapshot: Snapshot): void {
    this.start.hidden = true;
    this.cancel.hidden = false;
    this.cancel.disabled = false;
    this.progress.hidden = false;
    this.showHint("");
    this.say("Preparing the download…");
    this.update(snapshot);
  }

  started(): void {
    this.say("Downloading…");
  }

  update(snapshot: Snapshot): void {
    const fraction = snapshot.bytesTotal > 0 ? snapshot.bytes / snapshot.bytesTotal : 1;
    this.bar.value = Math.round(fraction * 1000);
    this.percent.textContent = `${Math.floor(fraction * 100)} %`;
    const speed = `${(snapshot.bytesPerSecond / 1_048_576).toFixed(1)} MB/s`;
    const pairs: [string, string][] = [
      ["Files", `${snapshot.filesDone} of ${snapshot.filesTotal}`],
      ["Data", `${formatBytes(snapshot.bytes)} of ${formatBytes(snapshot.bytesTotal)}`],
      ["Speed", speed],
      ["Elapsed", formatDuration(snapshot.elapsedSeconds)],
    ];
    replace(this.counts, ...pairs.flatMap(([label, value]) => [h("dt", {}, label), h("dd", { "data-testid": `download-${label.toLowerCase()}` }, value)]));
  }

  showHint(text: string): void {
    this.hint.hidden = text === "";
    this.hint.textContent = text;
  }

  finished(name: string): void {
    this.cancel.hidden = true;
    this.warning.hidden = true;
    this.showHint("");
    this.say(`Download finished: ${name}. Your browser has the whole file; you can close this page.`);
    this.status.dataset.state = "finished";
  }

  /** The download ended without a file; Start is offered again when `retry` is set. */
  stopped(message: string, state: "cancelled" | "failed", retry: boolean): void {
    this.cancel.hidden = true;
    this.start.hidden = !retry;
    this.start.disabled = !retry;
    this.controls.hidden = !retry;
    this.showHint("");
    this.say(message, state === "failed");
    this.status.dataset.state = state;
  }

  cancelling(): void {
    this.cancel.disabled = true;
    this.say("Cancelling…");
  }

  private say(text: string, error = false): void {
    this.status.textContent = text;
    this.status.classList.toggle("error", error);
    delete this.status.dataset.state;
  }
}

// The upload panel (user manual, "Upload Studies"): Click / Drag folder, the scan in the worker,
// "Found N files", sender email and message, Upload once the scan is done, progress with parsed,
// uploaded and unsupported files, size, speed, elapsed time and percent, retry messages, a
// leave-page warning while uploading, then Finished / Upload finished! / New upload. The files
// are read, sealed and sent by the worker; this thread only shows counts.

import { openDialog } from "../dialogs";
import { field, formatBytes, formatDuration, h, replace } from "../dom";
import type { ChosenFile } from "../messages";
import { errorText, WorkerFailure } from "../rpc";
import type { App } from "./app";

interface ScanCounts {
  found: number;
  parsed: number;
  unsupported: number;
  broken: number;
  studies?: number;
}

interface UploadState {
  phase: string;
  found: number;
  parsed: number;
  unsupported: number;
  broken: number;
  files_total: number;
  files_uploaded: number;
  files_already_stored: number;
  bytes_total: number;
  bytes_uploaded: number;
  elapsed: number;
  message: string;
  speed: number;
  percent: number;
}

interface UploadResult {
  studies: number;
  uploaded: number;
  already_stored: number;
  unsupported: number;
  broken: number;
  progress: UploadState;
}

async function entries(directory: FileSystemDirectoryEntry): Promise<FileSystemEntry[]> {
  const reader = directory.createReader();
  const all: FileSystemEntry[] = [];
  // readEntries answers in batches (100 in Chromium) until it answers an empty one.
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
    if (batch.length === 0) return all;
    all.push(...batch);
  }
}

/** Every file under the dropped items, with its path relative to the drop. */
async function droppedFiles(items: DataTransferItemList): Promise<ChosenFile[]> {
  // Read before the first await: the list empties once the drop event has been handled.
  const roots: FileSystemEntry[] = [];
  const files: ChosenFile[] = [];
  for (const item of Array.from(items)) {
    if (item.kind !== "file") continue;
    const entry = item.webkitGetAsEntry();
    const file = entry === null ? item.getAsFile() : null;
    if (entry !== null) roots.push(entry);
    else if (file !== null) files.push({ path: file.name, file });
  }
  const walk = async (entry: FileSystemEntry): Promise<void> => {
    if (entry.isFile) {
      const file = await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject));
      files.push({ path: entry.fullPath.replace(/^\/+/, ""), file });
    } else if (entry.isDirectory) {
      for (const child of await entries(entry as FileSystemDirectoryEntry)) await walk(child);
    }
  };
  for (const root of roots) await walk(root);
  return files;
}

function pickedFiles(list: FileList): ChosenFile[] {
  return Array.from(list).map((file) => ({ path: file.webkitRelativePath || file.name, file }));
}

/** Where the files go: my own studies, or a study shared with me with Edit (its id and label). */
export interface UploadTarget {
  study_id: string;
  label: string;
}

export function uploadPanel(app: App, onFinished: () => void, into: UploadTarget | null = null): void {
  if (document.querySelector("[data-testid=upload-panel]")) return;
  const picker = h("input", { type: "file", multiple: true, webkitdirectory: true, hidden: true, "data-testid": "folder-input" });
  const zone = h("button", { type: "button", class: "dropzone", "data-testid": "dropzone" }, "Click / Drag folder");
  const found = h("p", { class: "found", "data-testid": "found" });
  const sender = h("input", { type: "email", name: "sender_email", placeholder: "Your email (optional)", autocomplete: "email" });
  const message = h("textarea", { name: "message", rows: "3", placeholder: "Write your message" });
  const upload = h("button", { type: "button", class: "primary", disabled: true }, "Upload");
  const close = h("button", { type: "button" }, "Close");
  const bar = h("progress", { max: "100", value: "0", hidden: true, "data-testid": "upload-progress" });
  const counts = h("dl", { class: "counts", hidden: true, "data-testid": "upload-counts" });
  const note = h("p", { class: "message", role: "status", "data-testid": "upload-message" });
  const finished = h("div", { class: "finished", hidden: true });
  let folder: string | null = null;
  let uploading = false;

  const leaveWarning = (event: BeforeUnloadEvent): void => {
    event.preventDefault();
    // Older browsers show their own text only when returnValue is set.
    event.returnValue = "";
  };

  const show = (state: UploadState): void => {
    counts.hidden = false;
    bar.hidden = false;
    bar.value = Math.floor(state.percent);
    const pairs: [string, string, string][] = [
      ["Found", `${state.found} files`, "count-found"],
      ["Parsed files", String(state.parsed), "count-parsed"],
      ["Uploaded", `${state.files_uploaded + state.files_already_stored} of ${state.files_total} files`, "count-uploaded"],
      ["Unsupported files", String(state.unsupported + state.broken), "count-unsupported"],
      ["Size", `${formatBytes(state.bytes_uploaded)} of ${formatBytes(state.bytes_total)}`, "count-size"],
      ["Speed", `${formatBytes(state.speed)}/s`, "count-speed"],
      ["Elapsed", formatDuration(state.elapsed), "count-elapsed"],
      ["Progress", `${Math.floor(state.percent)} %`, "count-percent"],
    ];
    replace(counts, ...pairs.flatMap(([k, v, id]) => [h("dt", {}, k), h("dd", { "data-testid": id }, v)]));
    if (state.message) note.textContent = state.message;
  };

  const stopScan = app.runtime.on("scan", (data) => {
    const c = data as ScanCounts;
    found.textContent = `Scanning… ${c.found} files looked at, ${c.parsed} DICOM`;
  });
  const stopUpload = app.runtime.on("upload", (data) => show(data as UploadState));

  async function choose(files: ChosenFile[]): Promise<void> {
    if (uploading) return;
    upload.disabled = true;
    note.textContent = "";
    note.classList.remove("error");
    if (files.length === 0) {
      found.textContent = "The folder is empty. Choose the folder that holds the study.";
      return;
    }
    found.textContent = `Scanning ${files.length} files…`;
    try {
      folder = await app.runtime.mount(files);
      const result = await app.runtime.call<ScanCounts>("scan", { folder });
      const unsupported = result.unsupported + result.broken;
      found.textContent = `Found ${result.found} files` + (unsupported ? ` (${unsupported} unsupported, skipped)` : "");
      if (result.parsed === 0) {
        note.textContent = "No DICOM files were found in this folder. Choose the folder that holds the study.";
        note.classList.add("error");
        return;
      }
      upload.disabled = false;
    } catch (error) {
      found.textContent = "";
      note.textContent = errorText(error);
      note.classList.add("error");
    }
  }

  picker.addEventListener("change", () => {
    if (picker.files) void choose(pickedFiles(picker.files));
  });
  zone.addEventListener("click", () => picker.click());
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    if (event.dataTransfer) void droppedFiles(event.dataTransfer.items).then(choose);
  });

  upload.addEventListener("click", () => {
    upload.disabled = true;
    zone.disabled = true;
    uploading = app.uploading = true;
    window.addEventListener("beforeunload", leaveWarning);
    note.classList.remove("error");
    note.textContent = "Encrypting and uploading… Keep this tab open until the upload finishes.";
    app.runtime
      .call<UploadResult>("upload", { sender_email: sender.value, message: message.value, into: into?.study_id ?? "" })
      .then((result) => {
        show(result.progress);
        note.textContent = "";
        const skipped = result.unsupported + result.broken;
        replace(
          finished,
          h("h3", { "data-testid": "upload-finished" }, "Finished"),
          h("p", {}, "Upload finished!"),
          h("p", { class: "hint" }, `${result.studies} ${result.studies === 1 ? "study" : "studies"}: ${result.uploaded} files uploaded` + (result.already_stored ? `, ${result.already_stored} already stored` : "") + (skipped ? `, ${skipped} unsupported files skipped` : "") + "."),
          h("button", { type: "button", class: "primary", onclick: () => { dialog.remove(); cleanup(); uploadPanel(app, onFinished); } }, "New upload"),
        );
        finished.hidden = false;
        onFinished();
      })
      .catch((error: unknown) => {
        const expired = error instanceof WorkerFailure && error.status === 401;
        note.textContent = errorText(error) + (expired ? " Sign in again, then restart the upload." : "");
        note.classList.add("error");
        zone.disabled = false;
        upload.disabled = folder === null;
      })
      .finally(() => {
        uploading = app.uploading = false;
        window.removeEventListener("beforeunload", leaveWarning);
      });
  });

  const cleanup = (): void => {
    stopScan();
    stopUpload();
  };
  close.addEventListener("click", () => {
    if (uploading) {
      void openDialog("Upload in progress", [h("p", {}, "Keep this panel open until the upload finishes.")], [{ label: "OK", value: "ok", primary: true }]);
      return;
    }
    dialog.remove();
    cleanup();
  });
  const dialog = h(
    "aside",
    { class: "upload-panel", "data-testid": "upload-panel", "aria-label": "Upload Study" },
    h("h2", {}, "Upload Study"),
    h("p", { class: "destination", "data-testid": "destination" }, into ? `Add to the shared study ${into.label}` : "Upload to Personal studies"),
    zone,
    picker,
    found,
    // Adding to someone else's study keeps its sender and message.
    into ? "" : field("Sender email", sender),
    into ? "" : field("Message", message),
    h("div", { class: "actions" }, upload, close),
    bar,
    counts,
    note,
    finished,
  );
  document.body.appendChild(dialog);
}

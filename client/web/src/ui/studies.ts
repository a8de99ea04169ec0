// The Studies tab (user manual, "Find Studies"): source selector with Refresh, the search
// filters, progress and Cancel while the worklist opens, the result grid (sortable, virtual so
// that 10,000 rows scroll smoothly) and the study action menu.

import { confirmDialog, openDialog } from "../dialogs";
import { field, formatBytes, formatPersonName, formatStudyDate, h, replace } from "../dom";
import { errorText, WorkerFailure } from "../rpc";
import type { App } from "./app";
import { manageShares, PERMISSIONS, trustNewKey } from "./shares";
import { uploadPanel } from "./upload";
import { describe } from "./windows";

export interface StudyRow {
  row: number;
  study_id: string;
  patient_name: string;
  patient_id: string;
  patient_sex: string;
  accession_number: string;
  referring_physician: string;
  study_date: string;
  study_description: string;
  modalities: string[];
  image_count: number;
  size: number;
  owner: string;
  is_owner: boolean;
  study_instance_uid: string;
  sender_email: string;
  message: string;
  created_at: string;
  /** What I may do: "view", "download", "edit" or "admin" (owner: "admin"). */
  permission: string;
  share_id: string | null;
  expires_at: number;
  /** A shared study's sender check: "new", "same", or a warning about a changed key. */
  sender_check: string;
  sender_fingerprint: string;
  /** Who granted a received study (the sender whose fingerprint is checked). */
  granter_email: string;
}

const MAY_DOWNLOAD = new Set(["download", "edit", "admin"]);
const MAY_EDIT = new Set(["edit", "admin"]);

type Column = {
  key: keyof StudyRow;
  label: string;
  width: string;
  show: (row: StudyRow) => string;
};

const COLUMNS: Column[] = [
  { key: "row", label: "#", width: "4rem", show: (r) => String(r.row + 1) },
  { key: "patient_name", label: "Patient name", width: "12rem", show: (r) => formatPersonName(r.patient_name) },
  { key: "patient_id", label: "Patient ID", width: "8rem", show: (r) => r.patient_id },
  { key: "patient_sex", label: "Sex", width: "3.5rem", show: (r) => r.patient_sex },
  { key: "accession_number", label: "Accession", width: "8rem", show: (r) => r.accession_number },
  { key: "study_date", label: "Study date", width: "7rem", show: (r) => formatStudyDate(r.study_date) },
  { key: "modalities", label: "Modalities", width: "6rem", show: (r) => r.modalities.join(", ") },
  { key: "study_description", label: "Description", width: "12rem", show: (r) => r.study_description },
  { key: "image_count", label: "Images", width: "5rem", show: (r) => String(r.image_count) },
  { key: "owner", label: "Owner", width: "10rem", show: (r) => r.owner },
  { key: "study_instance_uid", label: "Study Instance UID", width: "18rem", show: (r) => r.study_instance_uid },
];

const ROW_HEIGHT = 32;
const OVERSCAN = 10;

const DATE_PRESETS: [string, string][] = [
  ["", "Any date"],
  ["today", "Today"],
  ["yesterday", "Yesterday"],
  ["this_week", "This week"],
  ["last_week", "Last week"],
  ["this_month", "This month"],
  ["last_month", "Last month"],
  ["this_year", "This year"],
  ["last_year", "Last year"],
  ["custom", "Custom range"],
];

const MODALITIES = ["", "CT", "MR", "US", "DX", "CR", "MG", "PT", "NM", "XA", "RF", "SR", "OT", "SC"];

function options(pairs: [string, string][]): HTMLOptionElement[] {
  return pairs.map(([value, label]) => h("option", { value }, label));
}

function localToday(): string {
  const now = new Date();
  const pad = (n: number): string => String(n).padStart(2, "0");
  return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
}

function compare(a: StudyRow, b: StudyRow, key: keyof StudyRow): number {
  const x = a[key];
  const y = b[key];
  if (typeof x === "number" && typeof y === "number") return x - y;
  const s = Array.isArray(x) ? x.join(",") : String(x);
  const t = Array.isArray(y) ? y.join(",") : String(y);
  return s.localeCompare(t, undefined, { sensitivity: "base", numeric: true });
}

type Line = { key: string; row: StudyRow; element: HTMLElement };

/**
 * The grid: a fixed header and a body that renders only the rows in view. A row's element is
 * kept while its row is unchanged, so that a reload or a scroll that shows the same rows does
 * not swap the element under a pointer between its press and its release (which would lose the
 * click); clicks are handled once, on the rows' container.
 */
class Grid {
  readonly element: HTMLElement;
  private rows: StudyRow[] = [];
  private lines = new Map<string, Line>();
  private version = 0;
  private shown = "";
  private sortKey: keyof StudyRow | null = null;
  private descending = false;
  private selected: string | null = null;
  private readonly body: HTMLElement;
  private readonly spacer: HTMLElement;
  private readonly window: HTMLElement;
  private readonly header: HTMLElement;
  private readonly template: string;

  constructor(private readonly onMenu: (row: StudyRow, x: number, y: number) => void) {
    this.template = COLUMNS.map((c) => c.width).join(" ") + " 3rem";
    this.header = h("div", { class: "grid-row grid-head", role: "row" });
    this.header.style.gridTemplateColumns = this.template;
    for (const column of COLUMNS) {
      this.header.appendChild(
        h("button", { type: "button", role: "columnheader", class: "grid-cell", "data-key": column.key, onclick: () => this.sortBy(column.key) }, column.label),
      );
    }
    this.header.appendChild(h("span", { class: "grid-cell" }));
    this.spacer = h("div", { class: "grid-spacer" });
    this.window = h("div", { class: "grid-window", role: "rowgroup" });
    this.window.addEventListener("click", (event) => this.clicked(event, false));
    this.window.addEventListener("contextmenu", (event) => this.clicked(event, true));
    this.body = h("div", { class: "grid-body", "data-testid": "study-grid-body" }, this.spacer, this.window);
    this.body.addEventListener("scroll", () => this.render());
    this.element = h("div", { class: "grid", role: "grid", "data-testid": "study-grid" }, this.header, this.body);
  }

  set(rows: StudyRow[]): void {
    this.rows = rows;
    this.version += 1;
    this.applySort();
    this.body.scrollTop = 0;
    this.render();
  }

  /** While the worklist is fetched or searched: its rows are about to change. */
  set busy(busy: boolean) {
    this.element.setAttribute("aria-busy", String(busy));
  }

  private sortBy(key: keyof StudyRow): void {
    this.descending = this.sortKey === key ? !this.descending : false;
    this.sortKey = key;
    for (const button of this.header.querySelectorAll<HTMLElement>("[data-key]")) {
      const active = button.dataset.key === key;
      button.setAttribute("aria-sort", active ? (this.descending ? "descending" : "ascending") : "none");
    }
    this.version += 1;
    this.applySort();
    this.render();
  }

  private applySort(): void {
    const key = this.sortKey;
    if (key === null) return;
    const sign = this.descending ? -1 : 1;
    this.rows.sort((a, b) => sign * compare(a, b, key) || a.row - b.row);
  }

  private render(): void {
    this.spacer.style.height = `${this.rows.length * ROW_HEIGHT}px`;
    const height = this.body.clientHeight || 600;
    const first = Math.max(0, Math.floor(this.body.scrollTop / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(this.rows.length, Math.ceil((this.body.scrollTop + height) / ROW_HEIGHT) + OVERSCAN);
    const shown = `${this.version}:${first}:${last}`;
    if (shown === this.shown) return;
    this.shown = shown;
    this.window.style.transform = `translateY(${first * ROW_HEIGHT}px)`;
    const lines = new Map<string, Line>();
    const elements: HTMLElement[] = [];
    for (let index = first; index < last; index += 1) {
      const row = this.rows[index];
      if (row === undefined) continue;
      const key = JSON.stringify(row);
      let line = this.lines.get(row.study_id);
      if (line?.key !== key) line = { key, row, element: this.line(row) };
      line.element.classList.toggle("selected", row.study_id === this.selected);
      lines.set(row.study_id, line);
      elements.push(line.element);
    }
    this.lines = lines;
    const current = this.window.children;
    if (elements.length !== current.length || elements.some((element, index) => current[index] !== element)) {
      this.window.replaceChildren(...elements);
    }
  }

  private line(row: StudyRow): HTMLElement {
    const line = h("div", { class: "grid-row", role: "row", "data-study": row.study_id, "data-testid": "study-row" });
    line.style.gridTemplateColumns = this.template;
    for (const column of COLUMNS) {
      const text = column.show(row);
      line.appendChild(h("span", { class: "grid-cell", role: "gridcell", title: text }, text));
    }
    line.appendChild(h("button", { type: "button", class: "grid-cell menu-button", "aria-label": "Actions", "data-testid": "row-actions" }, "⋮"));
    return line;
  }

  private clicked(event: MouseEvent, context: boolean): void {
    const target = event.target instanceof Element ? event.target : null;
    const id = target?.closest<HTMLElement>(".grid-row")?.dataset.study;
    const line = id === undefined ? undefined : this.lines.get(id);
    if (line === undefined) return;
    this.select(line.row);
    const button = target?.closest<HTMLElement>(".menu-button");
    if (context) {
      event.preventDefault();
      this.onMenu(line.row, event.clientX, event.clientY);
    } else if (button) {
      // The document's click closes the menu: this click opens it.
      event.stopPropagation();
      const box = button.getBoundingClientRect();
      this.onMenu(line.row, box.left, box.bottom);
    }
  }

  private select(row: StudyRow): void {
    this.selected = row.study_id;
    for (const line of this.window.querySelectorAll<HTMLElement>(".grid-row")) {
      line.classList.toggle("selected", line.dataset.study === row.study_id);
    }
  }
}

function properties(app: App, row: StudyRow, changed: () => void): void {
  const access = row.is_owner ? "Owner" : (PERMISSIONS.find(([value]) => value === row.permission)?.[1] ?? row.permission);
  const pairs: [string, string][] = [
    ["Patient name", formatPersonName(row.patient_name)],
    ["Patient ID", row.patient_id],
    ["Sex", row.patient_sex],
    ["Accession number", row.accession_number],
    ["Referring physician", formatPersonName(row.referring_physician)],
    ["Study date", formatStudyDate(row.study_date)],
    ["Modalities", row.modalities.join(", ")],
    ["Images", String(row.image_count)],
    ["Size", formatBytes(row.size)],
    ["Owner", row.owner],
    ["Your access", access],
    ["Sender email", row.sender_email],
    ["Sender message", row.message],
    ["Uploaded", new Date(row.created_at).toLocaleString()],
    ["Study Instance UID", row.study_instance_uid],
    ["Study id", row.study_id],
  ];
  if (!row.is_owner) {
    pairs.splice(11, 0, ["Access expires", row.expires_at ? new Date(row.expires_at * 1000).toLocaleString() : "Never"]);
    const first = row.sender_check === "new" ? " (first seen in this browser: compare it with the sender)" : "";
    pairs.splice(13, 0, ["Sender's key fingerprint", row.sender_fingerprint + first]);
  }
  const description = h("input", { name: "study_description", "aria-label": "Description" });
  description.value = row.study_description;
  const editable = row.is_owner || MAY_EDIT.has(row.permission);
  const note = h("p", { class: "message", "aria-live": "polite", "data-testid": "properties-status" });
  const save = h("button", { type: "button" }, "Save description");
  save.addEventListener("click", () => {
    save.disabled = true;
    note.classList.remove("error");
    note.textContent = "Saving…";
    app.runtime
      .call<StudyRow>("edit_details", { study_id: row.study_id, changes: { study_description: description.value.trim() } })
      .then(
        (updated) => {
          row.study_description = updated.study_description;
          note.textContent = "Saved. Everyone the study is shared with sees the new description.";
          changed();
        },
        (error: unknown) => {
          note.textContent = errorText(error);
          note.classList.add("error");
        },
      )
      .finally(() => (save.disabled = false));
  });
  let warning: HTMLElement | null = null;
  if (row.sender_check && row.sender_check !== "new" && row.sender_check !== "same") {
    const shown = h("p", { class: "message error", "data-testid": "sender-warning" }, row.sender_check);
    // A changed key has a fingerprint to compare; keys that do not open have none.
    if (row.sender_fingerprint) {
      shown.append(
        " ",
        trustNewKey(app, row.granter_email, row.sender_fingerprint, (text, failed) => {
          shown.textContent = text;
          shown.classList.toggle("error", failed);
          if (!failed) changed();
        }),
      );
    }
    warning = shown;
  }
  void openDialog(
    "Properties",
    [
      warning ?? "",
      h(
        "dl",
        { class: "properties" },
        ...pairs.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v || "—")]),
        h("dt", {}, "Description"),
        h("dd", {}, ...(editable ? [description, " ", save] : [row.study_description || "—"])),
      ),
      note,
    ],
    [{ label: "Close", value: "close", primary: true }],
    { testId: "properties-dialog" },
  );
}

export function studiesTab(app: App, container: HTMLElement): void {
  const source = h("select", { name: "source", "aria-label": "Source" }, ...options([["personal", "Personal studies"], ["shared", "Shared with me"]]));
  source.value = app.prefs.get("source") ?? "personal";
  const name = h("input", { name: "patient_name", placeholder: "e.g. Doe or Do*" });
  const patientId = h("input", { name: "patient_id" });
  const sex = h("select", { name: "patient_sex" }, ...options([["", "Any"], ["F", "Female"], ["M", "Male"], ["O", "Other"]]));
  const accession = h("input", { name: "accession_number" });
  const physician = h("input", { name: "referring_physician" });
  const preset = h("select", { name: "date_preset" }, ...options(DATE_PRESETS));
  const from = h("input", { type: "date", name: "date_from", "aria-label": "Study date from" });
  const to = h("input", { type: "date", name: "date_to", "aria-label": "Study date to" });
  const range = h("span", { class: "range", hidden: true }, from, " – ", to);
  preset.addEventListener("change", () => {
    range.hidden = preset.value !== "custom";
  });
  const modality = h("select", { name: "modality" }, ...options(MODALITIES.map((m) => [m, m || "Any"])));
  const search = h("button", { type: "submit", class: "primary" }, "Search");
  const reset = h("button", { type: "button" }, "Reset");
  const status = h("p", { class: "message", role: "status", "data-testid": "search-status" });
  const progress = h("progress", { max: "1", value: "0", hidden: true });
  const cancel = h("button", { type: "button", hidden: true }, "Cancel");
  let loadedSource: string | null = null;
  let running: number | null = null;
  let searches = 0;

  const menu = h("div", { class: "menu", role: "menu", hidden: true, "data-testid": "row-menu" });
  // The plan's features decide whether the advanced viewer (MPR) is offered.
  let advanced = false;
  app.runtime.call<string[]>("features").then(
    (features) => (advanced = features.includes("advanced_viewer")),
    () => undefined,
  );
  const closeMenu = (): void => {
    menu.hidden = true;
  };
  const escape = (event: KeyboardEvent): void => {
    if (event.key === "Escape") closeMenu();
  };
  document.addEventListener("click", closeMenu);
  document.addEventListener("keydown", escape);

  const grid = new Grid((row, x, y) => {
    const item = (label: string, action: (() => void) | null, hint = ""): HTMLButtonElement =>
      h("button", { type: "button", role: "menuitem", disabled: action === null, title: hint, onclick: () => { closeMenu(); action?.(); } }, label);
    replace(
      menu,
      item("Open in new Window", () => app.windows.openViewer(row)),
      item("Open in advanced Viewer", advanced ? () => app.windows.openViewer(row, true) : null, "Not included in your plan."),
      item("Manage Shares", row.permission === "admin" ? () => void manageShares(app, row) : null, "Only the owner and people with Admin permission manage shares."),
      item(
        "Download as zip",
        MAY_DOWNLOAD.has(row.permission) ? () => void app.windows.openDownload(row) : null,
        "Your access to this study does not include downloading it.",
      ),
      item(
        "Add files",
        !row.is_owner && MAY_EDIT.has(row.permission)
          ? () => uploadPanel(app, () => void runSearch(true), { study_id: row.study_id, label: describe(row) })
          : null,
        row.is_owner ? "Upload Study adds files to your own studies." : "Adding files needs Edit permission.",
      ),
      item("Send To Dicom", null, "No DICOM node is configured."),
      item(
        "Delete",
        row.is_owner
          ? () =>
              void confirmDialog("Delete study", `Delete the study of ${formatPersonName(row.patient_name) || "this patient"}${row.study_date ? ` from ${formatStudyDate(row.study_date)}` : ""}? Deleted studies cannot be recovered.`, "Delete", true).then(async (yes) => {
                if (!yes) return;
                await app.runtime.call("delete_study", { study_id: row.study_id });
                status.textContent = "The study was deleted.";
                await runSearch();
              })
          : null,
        row.is_owner ? "" : "Only the owner can delete this study.",
      ),
      item("Properties", () => properties(app, row, () => void runSearch())),
    );
    menu.hidden = false;
    menu.style.left = `${Math.min(x, window.innerWidth - 220)}px`;
    menu.style.top = `${Math.min(y, window.innerHeight - 280)}px`;
    menu.querySelector<HTMLButtonElement>("button:not(:disabled)")?.focus();
  });

  const filters = (): Record<string, string> => ({
    patient_name: name.value,
    patient_id: patientId.value,
    patient_sex: sex.value,
    accession_number: accession.value,
    referring_physician: physician.value,
    modality: modality.value,
    date_preset: preset.value === "custom" ? "" : preset.value,
    date_from: preset.value === "custom" ? from.value : "",
    date_to: preset.value === "custom" ? to.value : "",
  });

  const stopEvents = app.runtime.on("search", (data) => {
    const { opened, total } = data as { opened: number; total: number };
    progress.max = Math.max(total, 1);
    progress.value = opened;
    status.textContent = `Decrypting the worklist: ${opened} of ${total} studies…`;
  });

  async function load(): Promise<boolean> {
    running = app.runtime.peekId();
    progress.hidden = false;
    cancel.hidden = false;
    status.classList.remove("error");
    status.textContent = "Fetching the worklist…";
    try {
      await app.runtime.call("load_studies", { source: source.value, request_id: String(running) });
      loadedSource = source.value;
      return true;
    } catch (error) {
      status.textContent = errorText(error);
      status.classList.toggle("error", !(error instanceof WorkerFailure && error.kind === "cancelled"));
      return false;
    } finally {
      running = null;
      progress.hidden = true;
      cancel.hidden = true;
    }
  }

  async function runSearch(reload = false): Promise<void> {
    if (!container.isConnected) return;
    search.disabled = true;
    searches += 1;
    grid.busy = true;
    try {
      if ((reload || loadedSource !== source.value) && !(await load())) return;
      const result = await app.runtime.call<{ rows: StudyRow[]; total: number }>("search", { filters: filters(), today: localToday() });
      grid.set(result.rows);
      status.classList.remove("error");
      status.textContent =
        result.rows.length === 0
          ? result.total === 0
            ? source.value === "personal"
              ? "No studies yet. Use Upload Study to add one."
              : "No study is shared with you yet."
            : "Search returns no studies. Check the filters, the date range and the spelling, or Reset."
          : `${result.rows.length} of ${result.total} studies`;
    } catch (error) {
      status.textContent = errorText(error);
      status.classList.add("error");
    } finally {
      search.disabled = false;
      searches -= 1;
      grid.busy = searches > 0;
    }
  }

  cancel.addEventListener("click", () => {
    if (running !== null) void app.runtime.call("cancel", { request_id: String(running) });
  });
  reset.addEventListener("click", () => {
    form.reset();
    range.hidden = true;
    void runSearch();
  });
  source.addEventListener("change", () => {
    app.prefs.set("source", source.value);
    void runSearch(true);
  });
  const form = h(
    "form",
    { class: "filters", "aria-label": "Search filters" },
    field("Name", name),
    field("Patient ID", patientId),
    field("Sex", sex),
    field("Accession number", accession),
    field("Referring physician", physician),
    h("div", { class: "field" }, field("Study date", preset), range),
    field("Modality", modality),
    h("div", { class: "actions" }, search, reset),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void runSearch();
  });
  const upload = h("button", { type: "button", class: "primary", onclick: () => uploadPanel(app, () => void runSearch(true)) }, "Upload Study");
  replace(
    container,
    h(
      "div",
      { class: "studies" },
      h("div", { class: "toolbar" }, field("Source", source), h("button", { type: "button", onclick: () => void runSearch(true) }, "Refresh"), h("span", { class: "spacer" }), upload),
      form,
      h("div", { class: "statusline" }, status, progress, cancel),
      grid.element,
      menu,
    ),
  );
  const observer = new MutationObserver(() => {
    if (!container.contains(grid.element)) {
      stopEvents();
      document.removeEventListener("click", closeMenu);
      document.removeEventListener("keydown", escape);
      observer.disconnect();
    }
  });
  observer.observe(container, { childList: true });
  void runSearch(true);
}

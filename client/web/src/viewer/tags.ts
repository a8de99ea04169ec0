// The DICOM tag browser: the decrypted header of the image shown, as tag, name, VR and value,
// sequences indented under their items, pixel data left out. It reads the file again through the
// cache (the viewer keeps only a summary of each header), so it shows exactly what the file says.

import dcmjs, { type DicomDataset, type DicomElement } from "dcmjs";

import { h, replace } from "../dom";

export interface TagRow {
  depth: number;
  tag: string;
  name: string;
  vr: string;
  value: string;
}

// A header with thousands of per-frame items would make a table nobody reads; the filter finds
// what is beyond this many rows.
const MAX_ROWS_SHOWN = 2000;
const MAX_VALUE_CHARS = 240;

function punctuate(tag: string): string {
  return `(${tag.slice(0, 4)},${tag.slice(4, 8)})`.toUpperCase();
}

function nameOf(tag: string): string {
  const entry = dcmjs.data.DicomMetaDictionary.dictionary[punctuate(tag)];
  if (entry !== undefined) return entry.name;
  const group = Number.parseInt(tag.slice(0, 4), 16);
  if (group % 2 === 1) return Number.parseInt(tag.slice(4, 8), 16) <= 0xff ? "Private Creator" : "Private tag";
  return "Unknown";
}

function formatValue(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (value instanceof ArrayBuffer) return `(binary, ${value.byteLength} bytes)`;
  if (ArrayBuffer.isView(value)) return `(binary, ${value.byteLength} bytes)`;
  if (typeof value === "object") {
    // Person names come as {Alphabetic, Ideographic, Phonetic}; DICOM writes them joined by "=".
    const name = value as { Alphabetic?: string; Ideographic?: string; Phonetic?: string };
    if ("Alphabetic" in name || "Ideographic" in name || "Phonetic" in name) {
      return [name.Alphabetic ?? "", name.Ideographic ?? "", name.Phonetic ?? ""].join("=").replace(/=+$/, "");
    }
    return JSON.stringify(value);
  }
  return String(value);
}

function formatElement(element: DicomElement): string {
  // Binary elements hold their bytes directly rather than in a list.
  const raw: unknown = element.Value;
  const values: unknown[] = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
  const text = values.map(formatValue).join("\\");
  return text.length > MAX_VALUE_CHARS ? `${text.slice(0, MAX_VALUE_CHARS)}… (${text.length} characters)` : text;
}

// dcmjs stops before the pixel data but may still list the element itself.
const PIXEL_DATA = new Set(["7FE00008", "7FE00009", "7FE00010"]);

function collect(dataset: DicomDataset, depth: number, rows: TagRow[]): void {
  for (const tag of Object.keys(dataset).sort()) {
    if (PIXEL_DATA.has(tag.toUpperCase())) continue;
    const element = dataset[tag]!;
    if (element.vr === "SQ") {
      const items = (Array.isArray(element.Value) ? element.Value : []) as DicomDataset[];
      rows.push({ depth, tag: punctuate(tag), name: nameOf(tag), vr: "SQ", value: `${items.length} item${items.length === 1 ? "" : "s"}` });
      items.forEach((item, i) => {
        rows.push({ depth: depth + 1, tag: "", name: `Item ${i + 1}`, vr: "", value: "" });
        collect(item, depth + 2, rows);
      });
    } else {
      rows.push({ depth, tag: punctuate(tag), name: nameOf(tag), vr: element.vr, value: formatElement(element) });
    }
  }
}

/** Every element of the file's meta header and data set, up to the pixel data. */
export function tagRows(bytes: ArrayBuffer): TagRow[] {
  const message = dcmjs.data.DicomMessage.readFile(bytes, { untilTag: "7FE00010", includeUntilTagValue: false, ignoreErrors: true });
  const rows: TagRow[] = [];
  collect(message.meta, 0, rows);
  collect(message.dict, 0, rows);
  return rows;
}

/** Open the browser over `rows`; resolves when it is closed. */
export function showTagBrowser(title: string, rows: TagRow[]): Promise<void> {
  return new Promise((resolve) => {
    const body = h("tbody");
    const count = h("p", { class: "hint", role: "status" });
    const filter = h("input", { type: "search", placeholder: "Filter by tag, name or value", "aria-label": "Filter tags" });
    const render = (): void => {
      const needle = filter.value.trim().toLowerCase();
      const matching = needle === "" ? rows : rows.filter((row) => `${row.tag} ${row.name} ${row.vr} ${row.value}`.toLowerCase().includes(needle));
      const shown = matching.slice(0, MAX_ROWS_SHOWN);
      replace(
        body,
        ...shown.map((row) =>
          h(
            "tr",
            { "data-testid": "tag-row", "data-tag": row.tag, class: `depth-${Math.min(row.depth, 8)}` },
            h("td", { class: "tag" }, row.tag),
            h("td", { class: "name" }, row.name),
            h("td", { class: "vr" }, row.vr),
            h("td", { class: "value" }, row.value),
          ),
        ),
      );
      count.textContent =
        matching.length > shown.length ? `${shown.length} of ${matching.length} elements shown: narrow the filter to see the rest.` : `${matching.length} element${matching.length === 1 ? "" : "s"}`;
    };
    filter.addEventListener("input", render);
    const dialog = h(
      "dialog",
      { class: "dialog tag-browser", "data-testid": "tag-browser", "aria-label": title },
      h("h2", {}, title),
      h("div", { class: "tag-tools" }, filter, count),
      h(
        "div",
        { class: "tag-table" },
        h("table", { class: "table" }, h("thead", {}, h("tr", {}, h("th", {}, "Tag"), h("th", {}, "Name"), h("th", {}, "VR"), h("th", {}, "Value"))), body),
      ),
      h("div", { class: "dialog-buttons" }, h("button", { type: "button", class: "primary", onclick: () => dialog.close() }, "Close")),
    );
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve();
    });
    render();
    document.body.appendChild(dialog);
    dialog.showModal();
    filter.focus();
  });
}

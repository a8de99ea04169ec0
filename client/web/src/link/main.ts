// The page an anonymous link opens (/s/<link id>#<secret>, protocol.md §9.1, §15.5): no account,
// no sign-in. The whole address, fragment included, goes to this tab's worker by postMessage;
// the worker proves possession of the link's secret to the server and opens the study there.
// The fragment itself never leaves the browser. The viewer and download windows open from
// here as they do from the app, and read the study through this tab's worker.

import "../style.css";

import { field, formatBytes, formatPersonName, formatStudyDate, h, replace } from "../dom";
import { errorText, Runtime } from "../rpc";
import { Windows } from "../ui/windows";

interface OpenedLink {
  study_id: string;
  patient_name: string;
  study_date: string;
  study_description: string;
  modalities: string[];
  image_count: number;
  permission: string;
  permission_label: string;
  can_download: boolean;
  expires_at: number;
  created_by: string;
  creator_fingerprint: string;
}

function card(root: HTMLElement, ...children: (Node | string)[]): void {
  replace(root, h("section", { class: "card link-page", "data-testid": "link-page" }, h("h1", { class: "brand" }, "SecurePACS"), ...children));
}

function failed(root: HTMLElement, text: string): void {
  card(root, h("p", { class: "message error", role: "alert", "data-testid": "link-error" }, text));
}

async function booted(runtime: Runtime, root: HTMLElement): Promise<boolean> {
  return new Promise((resolve) => {
    runtime.onBoot((state) => {
      if (state.failed !== null) {
        failed(root, `SecurePACS could not start: ${state.failed}`);
        resolve(false);
      } else if (state.ready) {
        resolve(true);
      } else if (state.step === "download" && state.total > 0) {
        const percent = Math.floor((100 * state.loaded) / state.total);
        card(root, h("p", { "data-testid": "boot" }, `Loading the decryption runtime: ${percent} % of ${formatBytes(state.total)}`));
      } else {
        card(root, h("p", { "data-testid": "boot" }, "Starting the decryption runtime…"));
      }
    });
  });
}

function askPassword(root: HTMLElement, runtime: Runtime, windows: Windows, url: string, problem = ""): void {
  const password = h("input", { type: "password", name: "link_password", autocomplete: "off" });
  const open = h("button", { type: "submit", class: "primary" }, "Open study");
  const form = h(
    "form",
    { class: "stack" },
    h("p", {}, "This link has a password. Enter the password the sender gave you."),
    field("Link password", password),
    problem ? h("p", { class: "message error", role: "alert", "data-testid": "link-error" }, problem) : "",
    open,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    open.disabled = true;
    void openLink(root, runtime, windows, url, password.value);
  });
  card(root, form);
  password.focus();
}

async function openLink(root: HTMLElement, runtime: Runtime, windows: Windows, url: string, password: string): Promise<void> {
  card(root, h("p", { role: "status" }, "Opening the shared study…"));
  let opened: OpenedLink;
  try {
    opened = await runtime.call<OpenedLink>("open_link", { url, password });
  } catch (error) {
    if (password) askPassword(root, runtime, windows, url, errorText(error));
    else failed(root, errorText(error));
    return;
  }
  show(root, windows, opened);
}

function show(root: HTMLElement, windows: Windows, opened: OpenedLink): void {
  const study = {
    study_id: opened.study_id,
    patient_name: opened.patient_name,
    study_date: opened.study_date,
    study_description: opened.study_description,
  };
  const facts: [string, string][] = [
    ["Patient name", formatPersonName(opened.patient_name)],
    ["Study date", formatStudyDate(opened.study_date)],
    ["Description", opened.study_description],
    ["Modalities", opened.modalities.join(", ")],
    ["Images", String(opened.image_count)],
    ["Shared by", opened.created_by],
    ["Sender's key fingerprint", opened.creator_fingerprint],
    ["Your access", opened.permission_label],
    ["Link expires", opened.expires_at ? new Date(opened.expires_at * 1000).toLocaleString() : "Never"],
  ];
  const view = h("button", { type: "button", class: "primary", onclick: () => windows.openViewer(study) }, "Open in viewer");
  const download = opened.can_download
    ? h("button", { type: "button", onclick: () => void windows.openDownload(study) }, "Download as zip")
    : h("p", { class: "hint" }, "This link allows viewing only, not downloading.");
  card(
    root,
    h("h2", {}, "Shared study"),
    h("dl", { class: "properties", "data-testid": "link-study" }, ...facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v || "—")])),
    h(
      "p",
      { class: "hint" },
      "The study was decrypted in this browser; the server never saw its contents. The sender's identity is checked against the signature on the link: compare the fingerprint with them if it matters. Keep this page open while the viewer is open.",
    ),
    h("div", { class: "actions" }, view, download),
  );
}

async function main(): Promise<void> {
  const root = document.getElementById("app");
  if (root === null) return;
  const runtime = new Runtime();
  const windows = new Windows(runtime);
  if (!(await booted(runtime, root))) return;
  const url = window.location.href;
  let needsPassword: boolean;
  try {
    needsPassword = (await runtime.call<{ password_required: boolean }>("describe_link", { url })).password_required;
  } catch (error) {
    failed(root, errorText(error));
    return;
  }
  if (needsPassword) askPassword(root, runtime, windows, url);
  else await openLink(root, runtime, windows, url, "");
}

void main();

// The viewer window's composition root: where the study comes from (a port to the app tab's
// worker, or plain files for the benchmark baseline), Cornerstone set up once, and the screen.

import "../style.css";
import "./viewer.css";

import { cache, init as initCore, RenderingEngine } from "@cornerstonejs/core";
import { init as initLoader } from "@cornerstonejs/dicom-image-loader";

import { h, replace } from "../dom";
import { advancedFromLocation, connect, serveChildren, type StudySource, studyIdFromLocation } from "../study-source";
import { DEFAULT_FILE_CACHE_BYTES, FileCache } from "./cache";
import { keepLibrariesInsideTheCsp } from "./csp";
import { registerPacsImageLoader } from "./image-loader";
import { Instances, messageOf } from "./instances";
import { PlainSource, plainRequestFromLocation } from "./plain-source";
import { seriesOf } from "./series";
import { Tools } from "./tools";
import { Viewer } from "./viewer";

// Decoded images for display and MPR; the decrypted files have their own bound (cache.ts). A
// 512x512 CT volume of 1,000 slices needs 512 MiB as 16-bit values.
const IMAGE_CACHE_BYTES = 1024 * 1024 * 1024;
const MIB = 1024 * 1024;

function fatal(root: HTMLElement, title: string, detail: string, advice: string): void {
  document.title = "SecurePACS Viewer";
  replace(
    root,
    h(
      "div",
      { class: "viewer-fatal", role: "alert", "data-testid": "viewer-error", "data-state": "error" },
      h("h1", {}, title),
      h("p", {}, detail),
      h("p", { class: "hint" }, advice),
    ),
  );
}

interface Opened {
  source: StudySource;
  /** The study the app opened this window for; null in plain mode (the JSON names it). */
  studyId: string | null;
  cacheBytes: number;
}

/** The study source this window's address asks for, or null once a full-page error is shown. */
async function openSource(root: HTMLElement): Promise<Opened | null> {
  const plain = plainRequestFromLocation();
  if (plain !== null) {
    const cacheBytes = plain.cacheMiB === null ? DEFAULT_FILE_CACHE_BYTES : plain.cacheMiB * MIB;
    return { source: new PlainSource(plain.viewPath), studyId: null, cacheBytes };
  }
  const studyId = studyIdFromLocation();
  if (studyId === null) {
    fatal(root, "The viewer cannot open this study.", "This address does not name a study.", "Open the study from the Studies tab of SecurePACS (row menu, Open in new Window).");
    return null;
  }
  try {
    return { source: await connect("viewer", studyId), studyId, cacheBytes: DEFAULT_FILE_CACHE_BYTES };
  } catch (error) {
    fatal(root, "The viewer cannot get this study.", messageOf(error), "Keep the SecurePACS tab that opened this window open and signed in, then open the study again from its Studies tab.");
    return null;
  }
}

async function main(): Promise<void> {
  const root = document.getElementById("app");
  if (root === null) return;
  document.body.classList.add("viewer-page");
  replace(root, h("p", { class: "viewer-starting", role: "status" }, "Opening the study…"));
  const opened = await openSource(root);
  if (opened === null) return;
  const { source } = opened;
  let view;
  try {
    view = await source.open();
  } catch (error) {
    fatal(root, "The study could not be opened.", messageOf(error), "Close this window and open the study again from the Studies tab of SecurePACS. If it keeps failing, the study may have been deleted or its share revoked.");
    return;
  }
  const studyId = opened.studyId ?? view.studyId;
  document.title = `${view.patientName.replaceAll("^", " ").trim() || "Study"} · SecurePACS Viewer`;
  // The viewer's own download window asks this window for its port, as this window asked the app.
  serveChildren(async (hello) => {
    if (hello.window !== "download" || hello.studyId !== studyId) throw new Error("This viewer only opens the download of its own study.");
    return source.fork();
  });

  keepLibrariesInsideTheCsp();
  initCore();
  initLoader({ maxWebWorkers: Math.max(1, Math.min(2, Math.floor((navigator.hardwareConcurrency || 2) / 2))) });
  cache.setMaxCacheSize(IMAGE_CACHE_BYTES);
  const sizes = new Map(view.instances.map((instance) => [instance.fileId, instance.size]));
  const reader = {
    read: (fileId: string) => source.read(fileId),
    readMany: source.readMany?.bind(source),
    sizeOf: (fileId: string) => sizes.get(fileId),
  };
  const files = new FileCache(reader, opened.cacheBytes);
  const store = new Instances(files, view.instances);
  registerPacsImageLoader(store);
  const series = seriesOf(view, store);
  const engine = new RenderingEngine("securepacs-viewer");
  const viewer = new Viewer({ view, studyId, files, store, series, engine, tools: new Tools() });
  replace(root, viewer.root);
  await viewer.start(advancedFromLocation());
}

void main();

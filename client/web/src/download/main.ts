// The download window (protocol.md §14.5): opened by the app or the viewer with the study id in
// the fragment, it gets the decrypted files through a port from its opener and has the browser
// save them as one zip, streamed from the worker to the disk without ever holding the study.

import "../style.css";
import "./download.css";

import { connect, type PortSource, type StudyView, studyIdFromLocation } from "../study-source";
import { type Snapshot, DownloadPage } from "./page";
import { Progress } from "./progress";
import { activeSaveWorker, SaveFailure, type Saving, saveStream } from "./service-worker";
import { type StudyZip, studyZip } from "./zip-stream";

const REDRAW_MS = 500;
// No byte for this long while running: the browser may be waiting for the person to allow the
// download, or the opener is gone without closing (signed out in another way).
const STALL_MS = 15_000;

const AGAIN = "Open the download again from the Studies tab of SecurePACS.";

class Cancelled extends Error {}
class OpenerClosed extends Error {}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function main(): Promise<void> {
  const root = document.getElementById("app");
  if (root === null) return;
  const page = new DownloadPage(root);
  const studyId = studyIdFromLocation();
  if (studyId === null) {
    page.fatal(`This page was opened without a study. ${AGAIN}`);
    return;
  }
  // Set up while the opener answers, so that Start is ready as soon as the study shows.
  const helper = activeSaveWorker();
  helper.catch(() => undefined);

  let source: PortSource;
  let view: StudyView;
  try {
    source = await connect("download", studyId);
  } catch (error) {
    page.fatal(messageOf(error));
    return;
  }
  try {
    view = await source.open();
  } catch (error) {
    page.fatal(`${messageOf(error)} ${AGAIN}`);
    return;
  }
  page.showStudy(view);
  if (!view.canDownload) {
    page.blocked("Your access to this study does not include downloading it. Ask the study's owner to share it with you with Download permission.");
    return;
  }
  if (view.instances.length === 0) {
    page.blocked("This study has no files to download.");
    return;
  }
  let registration: ServiceWorkerRegistration;
  try {
    registration = await helper;
  } catch (error) {
    page.blocked(messageOf(error));
    return;
  }

  let cancel: (() => void) | null = null;
  page.onCancel(() => cancel?.());
  page.onStart(() => {
    void run(page, source, view, registration, (stop) => {
      cancel = stop;
    });
  });
  page.ready();
}

/** One attempt: zip, hand to the service worker, follow it to the end. Never rejects. */
async function run(
  page: DownloadPage,
  source: PortSource,
  view: StudyView,
  registration: ServiceWorkerRegistration,
  setCancel: (cancel: (() => void) | null) => void,
): Promise<void> {
  let zip: StudyZip;
  try {
    zip = studyZip(source, view);
  } catch (error) {
    page.stopped(messageOf(error), "failed", false);
    return;
  }
  const progress = new Progress();
  const controller = new AbortController();
  const counter = progress.counter();
  const snapshot = (): Snapshot => ({
    filesDone: zip.filesDone,
    filesTotal: view.instances.length,
    bytes: progress.bytes,
    bytesTotal: zip.length,
    bytesPerSecond: progress.bytesPerSecond(),
    elapsedSeconds: progress.elapsedSeconds(),
  });
  let started = false;
  const guard = (event: BeforeUnloadEvent): void => {
    event.preventDefault();
  };
  // A closed page ends the stream anyway; closing the source's stream lets the worker forget it.
  const leave = (): void => {
    controller.abort(new Cancelled());
    zip.stop();
  };
  const redraw = window.setInterval(() => {
    // The tab holding the worker is gone (the source watches it; a viewer that opened this
    // page may close without ending the download).
    if (source.gone) controller.abort(new OpenerClosed());
    page.update(snapshot());
    page.showHint(
      started && progress.idleMs() > STALL_MS
        ? "No data has arrived for a while. If your browser asks whether this site may download files, allow it. Keep the SecurePACS window that opened this page open and signed in."
        : "",
    );
  }, REDRAW_MS);
  window.addEventListener("beforeunload", guard);
  window.addEventListener("pagehide", leave);
  setCancel(() => {
    page.cancelling();
    controller.abort(new Cancelled());
  });
  page.running(snapshot());

  // Pull-based from here to the disk: the browser reads the service worker's response as it
  // writes the file, the response asks this page for pieces, which come through the counter
  // from the zip, and the zip reads the source one piece at a time.
  const piped = zip.stream.pipeTo(counter.writable, { signal: controller.signal });
  const saving: Promise<Saving> = saveStream(registration, counter.readable, view.zipName, zip.length);
  try {
    const [handle] = await Promise.all([
      saving.then((handle) => {
        started = true;
        page.started();
        return handle;
      }),
      piped,
    ]);
    // The last bytes may still be on their way to the service worker; "finished" must mean
    // that closing this page no longer cuts the file short. Without word from the worker the
    // stream has ended all the same, so the page says finished rather than fail a good file.
    await handle.delivered().catch(() => undefined);
    // At the end the average speed says more than the last few seconds.
    const elapsed = progress.elapsedSeconds();
    page.update({ ...snapshot(), bytesPerSecond: elapsed > 0 ? progress.bytes / elapsed : 0 });
    page.finished(view.zipName);
  } catch (error) {
    page.update(snapshot());
    // Whatever ended it, the source stops and the browser's download fails rather than keep
    // a truncated zip.
    if (!controller.signal.aborted) controller.abort(error);
    zip.stop();
    const reason: unknown = controller.signal.reason;
    if (reason instanceof Cancelled) {
      page.stopped("Download cancelled. Nothing was saved; select Start download to begin again.", "cancelled", true);
    } else if (reason instanceof OpenerClosed || source.gone) {
      page.stopped(`The SecurePACS window that opened this page was closed, so the download stopped. ${AGAIN}`, "failed", false);
    } else if (zip.failure !== null) {
      page.stopped(
        `${zip.failure.message} The download was stopped and your browser discards the incomplete file. Select Start download to try again; if it fails the same way, ask the study's owner to upload the study again.`,
        "failed",
        true,
      );
    } else if (error instanceof SaveFailure) {
      page.stopped(error.message, "failed", true);
    } else {
      page.stopped(
        "The browser stopped the download: it was cancelled in the browser's download list, or the file could not be written (check the free disk space). Select Start download to try again.",
        "failed",
        true,
      );
    }
  } finally {
    window.clearInterval(redraw);
    window.removeEventListener("beforeunload", guard);
    window.removeEventListener("pagehide", leave);
    setCancel(null);
    // Once the browser has the download (or never took it), the keep-alive can stop.
    saving.then((handle) => handle.stop(), () => undefined);
  }
}

void main();

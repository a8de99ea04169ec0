"""The download window: a study saved as one zip, streamed from the worker to the disk.

The end-to-end tests upload a study, open Download as zip from the Studies tab and unzip what
the browser saved; they cancel a download and close the app tab under a running one. The page's
own paths (a file failing verification, no download permission, big files in several pieces,
Cancel) are also driven through a stand-in opener: a page of our origin whose study port,
installed by the test, serves generated files over the port protocol the worker speaks.
"""

from __future__ import annotations

import os
import re
import time
import zipfile
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

import pydicom
import pytest
from playwright.sync_api import expect
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from tests.browser.app import SLOW, open_download, sign_up, upload

if TYPE_CHECKING:
    from pathlib import Path

    from playwright.sync_api import Dialog, Page, Route, Worker

    from tests.browser.conftest import Tab
    from tests.conftest import SmtpInbox
    from tests.live_server import Server

pytestmark = pytest.mark.slow

MIB: Final = 1024 * 1024
STUDY_ID: Final = "0123456789abcdef0123456789abcdef"
WARNING: Final = (
    "Keep this page open until your browser has saved the file. Closing it cancels the download."
)

# The stand-in opener's study port (see the module docstring). Byte i of file k is
# (31 i + 7 k) mod 256, so the test can rebuild every file; `failFile` answers its second piece
# with a verification failure; `holdAfter` holds back the pieces after that many until the test
# releases them.
FAKE_OPENER: Final = """
(args) => {
  const PIECE = 8 * 1024 * 1024;
  window.served = { pieces: 0, closed: 0 };
  // Pieces past args.holdAfter wait for window.releaseHeld(): a test can act mid-download
  // without racing the download's speed.
  const held = [];
  window.releaseHeld = () => { args.holdAfter = Infinity; held.splice(0).forEach((go) => go()); };
  const zipPaths = {};
  for (const f of args.files) zipPaths[f.fileId] = `${f.seriesUid}/${f.instanceUid}.dcm`;
  const view = {
    studyId: args.studyId, patientName: "Doe^Jane", patientId: "P1", patientSex: "F",
    studyDate: "20240615", studyDescription: "Stand-in study", accessionNumber: "A1",
    modalities: ["CT"], instances: args.files, zipName: args.zipName, zipPaths,
    canDownload: args.canDownload, advanced: false,
  };
  window.addEventListener("message", (event) => {
    if (event.data?.kind !== "securepacs-hello") return;
    const channel = new MessageChannel();
    const streams = new Map();
    let handles = 0;
    channel.port1.onmessage = ({ data }) => {
      const answer = (value, transfer = []) =>
        channel.port1.postMessage({ id: data.id, ok: true, value }, transfer);
      const fail = (file) => channel.port1.postMessage({ id: data.id, ok: false, error: {
        kind: "integrity", code: "authentication_failed", status: 0,
        message: `The instance ${file.instanceUid} failed verification.` } });
      if (data.op === "open") answer(view);
      else if (data.op === "readMany") {
        const ks = data.fileIds.map((id) => args.files.findIndex((f) => f.fileId === id));
        const failing = ks.find((k) => args.files[k].fileId === args.failFile);
        if (failing !== undefined) return fail(args.files[failing]);
        const all = ks.map((k) => {
          const file = new Uint8Array(args.files[k].size);
          for (let i = 0; i < file.length; i++) file[i] = (i * 31 + k * 7) & 255;
          return file.buffer;
        });
        window.served.groups = (window.served.groups ?? 0) + 1;
        answer(all, all);
      } else if (data.op === "stream") {
        handles += 1;
        streams.set(handles, { k: args.files.findIndex((f) => f.fileId === data.fileId), at: 0 });
        answer(handles);
      } else if (data.op === "next") {
        const stream = streams.get(data.handle);
        const file = args.files[stream.k];
        if (file.fileId === args.failFile && stream.at > 0) return fail(file);
        if (stream.at >= file.size) {
          streams.delete(data.handle);
          answer(null);
          return;
        }
        const piece = new Uint8Array(Math.min(PIECE, file.size - stream.at));
        for (let i = 0; i < piece.length; i++) {
          piece[i] = ((stream.at + i) * 31 + stream.k * 7) & 255;
        }
        stream.at += piece.length;
        window.served.pieces += 1;
        const send = () => answer(piece.buffer, [piece.buffer]);
        if (window.served.pieces > (args.holdAfter ?? Infinity)) held.push(send);
        else send();
      } else if (data.op === "close") {
        streams.delete(data.handle);
        window.served.closed += 1;
        answer(null);
      }
    };
    event.source.postMessage({ kind: "securepacs-port", port: channel.port2 }, location.origin,
      [channel.port2]);
  });
}
"""


def write_study(folder: Path, *, slices: int, big_side: int = 0) -> dict[str, bytes]:
    """One study: a series of CT_small copies, and one big image in a second series when
    ``big_side`` is set. Returns every file's bytes by the zip path it must come back under.
    """
    template = str(get_testdata_file("CT_small.dcm"))
    study = generate_uid()
    series = generate_uid()
    written: dict[str, bytes] = {}

    def save(dataset: pydicom.Dataset, series_uid: str, name: str) -> None:
        dataset.PatientName = "Download^Test"
        dataset.StudyInstanceUID = study
        dataset.SeriesInstanceUID = series_uid
        dataset.SOPInstanceUID = generate_uid()
        dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        dataset.save_as(str(path), enforce_file_format=True)
        written[f"{series_uid}/{dataset.SOPInstanceUID}.dcm"] = path.read_bytes()

    for index in range(slices):
        dataset = pydicom.dcmread(template)
        dataset.InstanceNumber = index + 1
        save(dataset, series, f"series/{index:04d}.dcm")
    if big_side:
        # More than one 8 MiB piece of pixel data that no codec could shrink.
        dataset = pydicom.dcmread(template)
        dataset.Rows = dataset.Columns = big_side
        dataset.PixelData = os.urandom(big_side * big_side * 2)
        save(dataset, generate_uid(), "big/big.dcm")
    return written


def _hold_big_file_reads(tab: Tab) -> tuple[list[Route], dict[str, int]]:
    """Hold a download's range reads (the big file's) after ``count`` of them have passed.

    Returns the held routes and the counter, which the test raises to let more through.
    """
    held: list[Route] = []
    let_through = {"count": 1}

    def hold(route: Route) -> None:
        if let_through["count"] > 0:
            let_through["count"] -= 1
            route.continue_()
        else:
            held.append(route)

    # A download's range reads say that they are one (protocol.md §15.1).
    tab.context.route(re.compile(r"/api/v1/blobs/[0-9a-f]{32}\?download=true$"), hold)
    return held, let_through


def watch(tab: Tab, window: Page) -> None:
    """Record the window's console and errors with its tab's (the fixture checks them)."""
    window.on("pageerror", lambda error: tab.recorder.errors.append(str(error)))
    window.on("console", tab.recorder.message)


def generated(index: int, size: int) -> bytes:
    """File ``index`` of the stand-in study (the pattern repeats every 256 bytes)."""
    pattern = bytes((i * 31 + index * 7) & 255 for i in range(256))
    return (pattern * (size // 256 + 1))[:size]


def stand_in_files(sizes: list[int]) -> list[dict[str, object]]:
    """Instances of two series with the given sizes, as the study view lists them."""
    return [
        {
            "fileId": f"{index:032x}",
            "seriesUid": f"1.2.3.{index % 2}",
            "instanceUid": f"1.2.3.{index % 2}.{index}",
            "size": size,
        }
        for index, size in enumerate(sizes)
    ]


def open_with_stand_in(
    tab: Tab,
    site: Server,
    files: list[dict[str, object]],
    *,
    can_download: bool = True,
    fail_file: str = "",
    hold_after: int | None = None,
) -> Page:
    """The download window, opened by a stand-in opener serving ``files``."""
    page = tab.page
    # The download page without a study is an inert page of our origin to open from.
    page.goto(site.url + "/download")
    expect(page.get_by_test_id("download-status")).to_contain_text("opened without a study")
    page.evaluate(
        FAKE_OPENER,
        {
            "studyId": STUDY_ID,
            "files": files,
            "zipName": "Doe_Jane_20240615.zip",
            "canDownload": can_download,
            "failFile": fail_file,
            "holdAfter": hold_after,
        },
    )
    with page.expect_popup() as popup:
        page.evaluate(f"window.open('/download#{STUDY_ID}')")
    window = popup.value
    window.set_default_timeout(60_000)
    watch(tab, window)
    expect(window.get_by_test_id("download-study")).to_contain_text("Stand-in study")
    return window


def test_download_stand_in_zip_is_byte_identical(tab: Tab, site: Server, tmp_path: Path) -> None:
    """A zip of files in several 8 MiB pieces, an empty file and small ones, byte for byte."""
    sizes = [20 * MIB + 5, 0, 1, 300_000, 8 * MIB]
    files = stand_in_files(sizes)
    window = open_with_stand_in(tab, site, files)
    expect(window.get_by_text(WARNING)).to_be_visible()
    expect(window.get_by_test_id("download-study")).to_contain_text("5 files, 28.3 MB")
    start = window.get_by_role("button", name="Start download")
    expect(start).to_be_enabled()
    with window.expect_download() as download:
        start.click()
    assert download.value.suggested_filename == "Doe_Jane_20240615.zip"
    saved = tmp_path / "saved.zip"
    download.value.save_as(saved)
    status = window.get_by_test_id("download-status")
    # At once: the service worker says when it has the last byte (the page's fallback for a
    # silent worker would take 10 s).
    expect(status).to_have_text(
        "Download finished: Doe_Jane_20240615.zip. Your browser has the whole file; "
        "you can close this page.",
        timeout=5_000,
    )
    expect(window.get_by_test_id("download-files")).to_have_text("5 of 5")
    expect(window.get_by_test_id("download-percent")).to_have_text("100 %")
    with zipfile.ZipFile(saved) as archive:
        assert archive.testzip() is None
        infos = archive.infolist()
        assert [info.filename for info in infos] == [
            f"{f['seriesUid']}/{f['instanceUid']}.dcm" for f in files
        ]
        for index, info in enumerate(infos):
            assert info.compress_type == zipfile.ZIP_STORED
            assert archive.read(info) == generated(index, sizes[index])
    # Every file was read once: the big ones piece by piece, the small ones (up to 4 MiB) in one
    # group; no stream was left open.
    assert window.evaluate("window.opener.served") == {"pieces": 3 + 1, "closed": 0, "groups": 1}


def test_download_stand_in_verification_failure_stops_with_its_message(
    tab: Tab, site: Server
) -> None:
    """An instance that fails verification fails the browser's download and names itself."""
    files = stand_in_files([1000, 17 * MIB, 1000])
    window = open_with_stand_in(tab, site, files, fail_file=str(files[1]["fileId"]))
    with window.expect_download() as download:
        window.get_by_role("button", name="Start download").click()
    assert download.value.failure() is not None
    status = window.get_by_test_id("download-status")
    expect(status).to_contain_text("The instance 1.2.3.1.1 failed verification.")
    expect(status).to_contain_text("ask the study's owner to upload the study again")
    expect(status).to_have_attribute("data-state", "failed")
    expect(window.get_by_role("button", name="Start download")).to_be_enabled()


def test_download_stand_in_without_permission_cannot_start(tab: Tab, site: Server) -> None:
    """A share without Download permission: Start stays disabled and says why."""
    window = open_with_stand_in(tab, site, stand_in_files([10]), can_download=False)
    expect(window.get_by_role("button", name="Start download")).to_be_disabled()
    expect(window.get_by_test_id("download-reason")).to_contain_text(
        "does not include downloading it"
    )


def test_download_stand_in_cancel_stops_reading(tab: Tab, site: Server) -> None:
    """Cancel fails the browser's download and stops asking the source for pieces."""
    files = stand_in_files([8 * MIB] * 12)
    # One piece per file: the third file's piece waits until after Cancel.
    window = open_with_stand_in(tab, site, files, hold_after=2)
    with window.expect_download() as download:
        window.get_by_role("button", name="Start download").click()
    expect(window.get_by_test_id("download-files")).to_have_text("2 of 12", timeout=30_000)
    window.get_by_role("button", name="Cancel").click()
    window.evaluate("window.opener.releaseHeld()")
    status = window.get_by_test_id("download-status")
    expect(status).to_have_attribute("data-state", "cancelled")
    expect(status).to_contain_text("Download cancelled")
    assert download.value.failure() is not None
    # The file being read when Cancel came is closed at the source once its piece in flight
    # has arrived; after that, nothing more is asked for.
    window.wait_for_function("() => window.opener.served.closed === 1")
    served = window.evaluate("window.opener.served")
    window.wait_for_timeout(1500)
    assert window.evaluate("window.opener.served") == served
    assert served["pieces"] < 12


def test_download_unknown_token_says_start_again(tab: Tab, site: Server) -> None:
    """A download link the service worker does not know (restarted from the browser's list)."""
    page = tab.page
    page.goto(site.url + "/download")
    expect(page.get_by_test_id("download-status")).to_contain_text("opened without a study")
    # As the download page does before its first download.
    page.evaluate(
        """async () => {
          const r = await navigator.serviceWorker.register(
            '/download-sw.js', {scope: '/download/'});
          const w = r.installing ?? r.waiting;
          if (w) await new Promise((ok) => w.addEventListener('statechange',
            () => w.state === 'activated' && ok()));
        }"""
    )
    page.goto(site.url + f"/download/{'ab' * 16}")
    expect(page.get_by_role("heading")).to_have_text("This download is no longer available")
    expect(page.locator("body")).to_contain_text("Studies tab")


def test_download_as_zip_saves_the_study_byte_for_byte(
    tab: Tab, site: Server, mail: SmtpInbox, tmp_path: Path
) -> None:
    """Download as zip from the Studies tab: every uploaded file comes back unchanged."""
    page = tab.page
    sign_up(page, site, mail, "download-zip@example.org", tab.downloads)
    originals = write_study(tmp_path / "study", slices=20, big_side=2304)
    upload(page, tmp_path / "study")

    window = open_download(page)
    watch(tab, window)
    expect(window.get_by_test_id("download-study")).to_contain_text("Download, Test")
    expect(window.get_by_test_id("download-study")).to_contain_text("21 files")
    expect(window.get_by_text(WARNING)).to_be_visible()
    start = window.get_by_role("button", name="Start download")
    expect(start).to_be_enabled(timeout=SLOW)
    mark = tab.recorder.mark()
    answered: list[tuple[str, bool]] = []
    tab.context.on("response", lambda r: answered.append((r.url, r.from_service_worker)))
    with window.expect_download(timeout=SLOW) as download:
        start.click()
    name = download.value.suggested_filename
    assert re.fullmatch(r"Download-Test_\d{8}_\w+\.zip", name), name
    saved = tmp_path / name
    download.value.save_as(saved)
    expect(window.get_by_test_id("download-status")).to_contain_text(
        f"Download finished: {name}", timeout=SLOW
    )
    expect(window.get_by_test_id("download-files")).to_have_text("21 of 21")

    with zipfile.ZipFile(saved) as archive:
        assert archive.testzip() is None
        assert sorted(archive.namelist()) == sorted(originals)
        for info in archive.infolist():
            assert info.compress_type == zipfile.ZIP_STORED
            assert archive.read(info) == originals[info.filename], info.filename
    # The zip went from the service worker to the disk: the server was never asked for it,
    # and no address carried the file name (it names the patient).
    for request in tab.recorder.requests[mark:]:
        assert name not in request.url
    saves = [(url, worker) for url, worker in answered if "/download/" in url]
    assert saves
    assert all(worker for _, worker in saves), saves


def test_download_cancel_stops_and_a_closed_app_tab_ends_the_download(
    tab: Tab, site: Server, mail: SmtpInbox, tmp_path: Path
) -> None:
    """Cancel fails the browser's download and reads no further blob; so does closing the tab
    that opened the window, which then says where to start again."""
    page = tab.page
    sign_up(page, site, mail, "download-cancel@example.org", tab.downloads)
    # The small files come in one read-ahead batch; the big one (over 8 MiB) by range reads.
    write_study(tmp_path / "study", slices=30, big_side=2304)
    upload(page, tmp_path / "study")

    # From here the big file's range reads wait until the test lets them go (its first piece
    # passes): the download is caught halfway, whatever the speed of this machine and wherever
    # the big file is in the study. The small files' batch reads are not held.
    held, let_through = _hold_big_file_reads(tab)
    window = open_download(page)
    watch(tab, window)
    start = window.get_by_role("button", name="Start download")
    expect(start).to_be_enabled(timeout=SLOW)
    with window.expect_download(timeout=SLOW) as download:
        start.click()
    expect(window.get_by_test_id("download-status")).to_have_text("Downloading…")
    window.wait_for_function("() => document.querySelector('progress').value > 0")
    page.wait_for_timeout(500)
    assert held, "the download is waiting for a held blob"
    # Closing the window while it runs asks first (the browser's own leave-page question).
    asked: list[str] = []

    def leave_page(dialog: Dialog) -> None:
        asked.append(dialog.type)
        dialog.dismiss()

    window.once("dialog", leave_page)
    window.close(run_before_unload=True)
    for _ in range(100):
        if asked:
            break
        window.wait_for_timeout(100)
    assert asked == ["beforeunload"]
    expect(window.get_by_test_id("download-status")).to_have_text("Downloading…")
    assert not window.is_closed()
    window.get_by_role("button", name="Cancel").click()
    status = window.get_by_test_id("download-status")
    expect(status).to_have_attribute("data-state", "cancelled")
    expect(status).to_contain_text("Download cancelled")
    assert download.value.failure() is not None
    files_done = window.get_by_test_id("download-files").inner_text()

    # The read that was waiting finishes; nothing further is asked for.
    mark = tab.recorder.mark()
    let_through["count"] = 1_000
    for route in held:
        route.continue_()
    held.clear()
    window.wait_for_timeout(2_000)
    later = [urlsplit(r.url).path for r in tab.recorder.requests[mark:]]
    assert not [p for p in later if p.startswith("/api/v1/blobs/")], later
    assert window.get_by_test_id("download-files").inner_text() == files_done

    # Again, and this time the app tab closes halfway: the window holds no key, so the
    # download stops and the window says where to start again.
    let_through["count"] = 1
    with window.expect_download(timeout=SLOW) as download:
        start.click()
    expect(status).to_have_text("Downloading…")
    page.close()
    expect(status).to_contain_text("was closed, so the download stopped", timeout=SLOW)
    expect(status).to_contain_text("Studies tab")
    assert download.value.failure() is not None
    window.reload()
    expect(window.get_by_test_id("download-status")).to_contain_text(
        "Open the study again from the Studies tab", timeout=SLOW
    )


def count_helper_answers(page: Page) -> Worker:
    """The app worker's helper thread (batch-helper.ts), once a download window has started it,
    counting the batches it answers in ``self.__answered``."""
    deadline = time.monotonic() + SLOW / 1000
    while time.monotonic() < deadline:
        for worker in page.workers:
            if "batch-helper-worker" in worker.url:
                worker.evaluate(
                    """() => {
                      self.__answered = 0;
                      const post = self.postMessage.bind(self);
                      self.postMessage = (message, transfer) => {
                        if (message !== null && typeof message === "object" && "ok" in message) {
                          self.__answered += 1;
                        }
                        post(message, transfer);
                      };
                    }"""
                )
                return worker
        # Not time.sleep: Playwright learns of new workers only while it is called.
        page.wait_for_timeout(50)
    raise AssertionError(f"no helper thread among {[w.url for w in page.workers]}")


def test_download_of_a_blob_changed_at_rest_names_the_instance(
    tab: Tab, site: Server, mail: SmtpInbox, tmp_path: Path
) -> None:
    """A file changed in the server's blob store: the worker's own reader refuses it, the core
    reads it again and the window names the instance; a clean study reads without the core."""
    page = tab.page
    sign_up(page, site, mail, "download-tampered@example.org", tab.downloads)
    originals = write_study(tmp_path / "study", slices=4)
    stored = site.root / "server" / "blobs" / "blobs"
    before = set(stored.iterdir()) if stored.is_dir() else set()
    upload(page, tmp_path / "study")

    # First, untouched: every group is read by the worker's reader (no fallback in the console),
    # and opened by its helper thread, which the download window started.
    window = open_download(page)
    watch(tab, window)
    helper = count_helper_answers(page)
    start = window.get_by_role("button", name="Start download")
    expect(start).to_be_enabled(timeout=SLOW)
    with window.expect_download(timeout=SLOW) as download:
        start.click()
    saved = tmp_path / "clean.zip"
    download.value.save_as(saved)
    expect(window.get_by_test_id("download-status")).to_contain_text(
        "Download finished", timeout=SLOW
    )
    with zipfile.ZipFile(saved) as archive:
        assert {n: archive.read(n) for n in archive.namelist()} == originals
    assert not [line for line in tab.recorder.console if "through the core" in line]
    assert helper.evaluate("() => self.__answered") >= 1
    window.close()

    # Then one byte of one stored blob flips, as a disk or an operator might.
    blobs = sorted(p for d in set(stored.iterdir()) - before for p in d.rglob("*") if p.is_file())
    assert len(blobs) == len(originals)
    victim = blobs[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 1
    victim.write_bytes(bytes(data))

    window = open_download(page)
    watch(tab, window)
    start = window.get_by_role("button", name="Start download")
    expect(start).to_be_enabled(timeout=SLOW)
    start.click()
    status = window.get_by_test_id("download-status")
    expect(status).to_have_attribute("data-state", "failed", timeout=SLOW)
    expect(status).to_contain_text("failed verification")
    expect(status).to_contain_text("Select Start download to try again")
    uids = [n.rsplit("/", 1)[1].removesuffix(".dcm") for n in originals]
    assert any(uid in status.inner_text() for uid in uids), status.inner_text()
    assert [line for line in tab.recorder.console if "through the core" in line]


def test_download_survives_a_refused_group_read(
    tab: Tab, site: Server, mail: SmtpInbox, tmp_path: Path
) -> None:
    """The server refuses the worker's first group read (503): the core reads those files again
    on its own, and the zip is whole."""
    page = tab.page
    sign_up(page, site, mail, "download-refused@example.org", tab.downloads)
    originals = write_study(tmp_path / "study", slices=6)
    upload(page, tmp_path / "study")
    refused: list[str] = []

    def refuse_once(route: Route) -> None:
        if refused:
            route.continue_()
            return
        refused.append(route.request.url)
        route.fulfill(status=503, body='{"code": "unavailable", "detail": "busy"}')

    tab.context.route(re.compile(r"/api/v1/blobs/read$"), refuse_once)
    window = open_download(page)
    watch(tab, window)
    start = window.get_by_role("button", name="Start download")
    expect(start).to_be_enabled(timeout=SLOW)
    with window.expect_download(timeout=SLOW) as download:
        start.click()
    saved = tmp_path / "study.zip"
    download.value.save_as(saved)
    expect(window.get_by_test_id("download-status")).to_contain_text(
        "Download finished", timeout=SLOW
    )
    assert refused
    with zipfile.ZipFile(saved) as archive:
        assert archive.testzip() is None
        assert {n: archive.read(n) for n in archive.namelist()} == originals
    fallbacks = [line for line in tab.recorder.console if "through the core" in line]
    assert len(fallbacks) == 1
    assert "status 503" in fallbacks[0]


def test_closing_the_download_page_fails_the_browsers_download(
    tab: Tab, site: Server, mail: SmtpInbox, tmp_path: Path
) -> None:
    """The page feeds the service worker: once it is closed mid-download, the browser's
    download fails instead of waiting for pieces that will never come."""
    page = tab.page
    sign_up(page, site, mail, "download-closed@example.org", tab.downloads)
    write_study(tmp_path / "study", slices=30, big_side=2304)
    upload(page, tmp_path / "study")
    # The big file's range reads wait (its first piece passes): the download is caught halfway.
    held, _ = _hold_big_file_reads(tab)
    window = open_download(page)
    watch(tab, window)
    start = window.get_by_role("button", name="Start download")
    expect(start).to_be_enabled(timeout=SLOW)
    with window.expect_download(timeout=SLOW) as download:
        start.click()
    expect(window.get_by_test_id("download-status")).to_have_text("Downloading…")
    window.wait_for_function("() => document.querySelector('progress').value > 0")
    for _ in range(100):
        if held:
            break
        page.wait_for_timeout(100)
    assert held, "the download is waiting for a held blob"
    window.close()
    assert download.value.failure() is not None
    for route in held:
        route.continue_()

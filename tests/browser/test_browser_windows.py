"""The viewer and download windows as the app opens them (protocol.md §14.5), in real Chromium.

What the windows show is tested in test_browser_viewer.py and test_browser_download.py; here:
how they get their study (a port from the app tab, never a key in a URL, storage or request),
what the server sees while a study is viewed (ZK-1: blob reads by opaque id, no decrypted byte,
no attribute), the Viewer tab's list, the manual's popup advice, a window without an opener, and
sign-out closing every window.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from playwright.sync_api import expect

from tests.browser.app import (
    SLOW,
    log_out,
    open_download,
    open_viewer,
    row_action,
    search,
    sign_up,
    upload,
)
from tests.browser.data import CANARY, CANARY_UID, write_canary

if TYPE_CHECKING:
    from pathlib import Path

    from playwright.sync_api import Page

    from tests.browser.conftest import Tab
    from tests.conftest import SmtpInbox
    from tests.live_server import Server

# The opaque paths the windows may cause: the study's record and its blobs by id.
_ALLOWED = (
    re.compile(r"^/api/v1/studies/[0-9a-f]{32}$"),
    re.compile(r"^/api/v1/blobs/[0-9a-f]{32}$"),
    re.compile(r"^/api/v1/me/$"),
)


def _watch(tab: Tab, window: Page) -> None:
    """A child window's page errors and CSP refusals count against the test like the tab's."""
    window.on("pageerror", lambda error: tab.recorder.errors.append(str(error)))
    window.on("console", tab.recorder.message)


def _first_image(viewer: Page) -> None:
    """Wait until a viewport of the viewer shows an image."""
    expect(viewer.locator("[data-state='ready']").first).to_be_visible(timeout=SLOW)


def _canary_study(page: Page, tmp_path: Path) -> None:
    folder = tmp_path / "canary"
    write_canary(folder / "canary.dcm")
    upload(page, folder)
    rows = search(page, **{"Patient ID": CANARY["PatientID"]})
    assert len(rows) == 1


def test_viewer_window_gets_its_study_through_the_app_tab_and_the_server_sees_only_ids(
    tab: Tab, site: Server, mail: SmtpInbox, tmp_path: Path
) -> None:
    page = tab.page
    sign_up(page, site, mail, "viewer-zk@example.org", tab.downloads)
    _canary_study(page, tmp_path)
    preamble = (tmp_path / "canary" / "canary.dcm").read_bytes()[128:132]
    assert preamble == b"DICM"

    mark = tab.recorder.mark()
    viewer = open_viewer(page)
    _watch(tab, viewer)
    _first_image(viewer)
    expect(viewer.locator("body")).to_contain_text("Zkcanary")
    # And a download, from the study menu, saved by the browser.
    download_window = open_download(page)
    _watch(tab, download_window)
    with download_window.expect_download(timeout=SLOW) as saved:
        download_window.get_by_role("button", name="Start download").click()
    saved.value.save_as(tmp_path / "canary.zip")
    expect(download_window.get_by_test_id("download-status")).to_contain_text(
        "Download finished", timeout=SLOW
    )
    download_window.close()

    # The window's address carries the study id only in the fragment, which is never sent.
    study_id = urlsplit(viewer.url).fragment
    assert re.fullmatch(r"[0-9a-f]{32}", study_id)
    sent = tab.recorder.requests[mark:]
    assert sent, "the viewer's files came through the app's worker"
    for request in sent:
        parts = urlsplit(request.url)
        assert parts.netloc == urlsplit(site.url).netloc
        # The only query a window causes: a download's range read saying that it is one.
        assert parts.query in ("", "download=true"), request.url
        # The download's own address is answered by the service worker, never by the server.
        if parts.path.startswith("/download/"):
            continue
        if parts.path == "/api/v1/blobs/read":
            # Read ahead: blob ids, and nothing else, in the body.
            body = json.loads(request.body)
            assert set(body) == {"ids", "download"} and isinstance(body["download"], bool)
            assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in body["ids"]), body
        elif parts.path.startswith("/api/"):
            assert request.method == "GET", request
            assert any(p.match(parts.path) for p in _ALLOWED), request.url
        assert b"DICM" not in request.body
        # Every canary value but the one-letter sex, which any URL may contain.
        for value in (*(v for v in CANARY.values() if len(v) > 1), CANARY_UID):
            assert value.encode() not in request.body
            assert value not in request.url
    paths = [urlsplit(r.url).path for r in sent]
    assert "/viewer" in paths
    assert "/download" in paths
    assert "/api/v1/blobs/read" in paths
    # Nothing of the study was left in storage the server could read or the page keeps.
    stored = viewer.evaluate("() => JSON.stringify(Object.entries(localStorage))")
    assert CANARY["PatientName"] not in stored
    assert study_id not in viewer.evaluate("() => document.cookie")

    # The Viewer tab lists the open study; closing the window removes it.
    page.bring_to_front()
    page.get_by_role("tab", name="Viewer").click()
    listed = page.get_by_test_id("open-study")
    expect(listed).to_have_count(1)
    expect(listed).to_contain_text("Zkcanary, Browser")
    listed.get_by_role("button", name="Close").click()
    expect(page.get_by_test_id("open-studies")).to_contain_text("No study is open")
    assert viewer.is_closed()


def test_viewer_window_without_its_opener_says_where_to_open_the_study(
    tab: Tab, site: Server
) -> None:
    page = tab.page
    page.goto(f"{site.url}/viewer#{'ab' * 16}")
    expect(page.locator("body")).to_contain_text("Open the study again from the Studies tab")
    page.goto(f"{site.url}/download#{'ab' * 16}")
    expect(page.locator("body")).to_contain_text("Open the study again from the Studies tab")


def test_blocked_popup_gets_the_manuals_advice_and_sign_out_closes_the_windows(
    tab: Tab, site: Server, mail: SmtpInbox, tmp_path: Path
) -> None:
    page = tab.page
    sign_up(page, site, mail, "viewer-popup@example.org", tab.downloads)
    _canary_study(page, tmp_path)

    viewer = open_viewer(page)
    _first_image(viewer)
    # The same study again brings its window forward instead of opening a second one.
    page.bring_to_front()
    row_action(page, "Open in new Window")
    assert len(tab.context.pages) == 2

    # A browser that blocks popups: window.open answers null.
    viewer.close()
    page.evaluate("() => { window.open = () => null; }")
    row_action(page, "Open in new Window")
    advice = page.get_by_test_id("popup-blocked")
    expect(advice).to_contain_text("Allow popups for SecurePACS")
    expect(advice).to_contain_text("Open in new Window again")
    advice.get_by_role("button", name="OK").click()
    assert len(tab.context.pages) == 1


def test_logout_closes_viewer_windows(
    tab: Tab, site: Server, mail: SmtpInbox, tmp_path: Path
) -> None:
    page = tab.page
    sign_up(page, site, mail, "viewer-logout@example.org", tab.downloads)
    _canary_study(page, tmp_path)
    viewer = open_viewer(page)
    _first_image(viewer)
    page.bring_to_front()
    log_out(page)
    # Closed by the app as it signs out (the close may come before anyone listens for it).
    for _ in range(100):
        if viewer.is_closed():
            break
        page.wait_for_timeout(100)
    assert viewer.is_closed()

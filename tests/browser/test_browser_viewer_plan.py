"""The viewer on a server whose plan lacks the advanced viewer, and on a long series.

This module's server runs with ``SECUREPACS_FEATURES=""``: every plan feature off, as a plan
without the advanced viewer would be. The switch reaches the browser only through ``GET /me``
and the worker's study view, so a window cannot turn MPR on by asking for it in its address.

The long series (300 small CT slices) comes in a first read-ahead batch of ``BATCH_FILES`` (256)
files and smaller reads after it (the next batch, the viewer's prefetch groups): holding those
shows that the first image is on screen before the series is.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pydicom
import pytest
from playwright.sync_api import expect

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from synthetic import make_ct_series

from securepacs.client.read_ahead import BATCH_FILES
from tests.browser.app import SLOW, open_viewer, search, sign_up, upload
from tests.browser.conftest import Tab, open_tab
from tests.live_server import Server

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Browser, Page, Route

    from tests.conftest import SmtpInbox

SLICES = 300
PATIENT_ID = "PLAN-LONG-CT"
ACTIVE = "[data-testid=viewport][data-active=true]"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, mail: SmtpInbox) -> Iterator[Server]:
    """`securepacs serve` with every plan feature switched off."""
    server = Server(tmp_path_factory.mktemp("site"))
    server.env["SECUREPACS_SMTP_URL"] = f"smtp://127.0.0.1:{mail.port}"
    server.env["SECUREPACS_FEATURES"] = ""
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _write_long_series(folder: Path) -> None:
    staging = folder.parent / "staging"
    paths = make_ct_series(staging, slices=SLICES, rows=32, columns=32, seed=3)
    folder.mkdir(parents=True)
    for index, path in enumerate(paths):
        dataset = pydicom.dcmread(path)
        dataset.PatientID = PATIENT_ID
        dataset.save_as(folder / f"slice-{index:03d}.dcm", enforce_file_format=True)
    shutil.rmtree(staging)


@pytest.fixture(scope="module")
def account(
    browser: Browser, site: Server, mail: SmtpInbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Tab]:
    """A signed-up account holding the long series."""
    root = tmp_path_factory.mktemp("plan")
    _write_long_series(root / "study")
    tab = open_tab(browser, root / "downloads")
    try:
        sign_up(tab.page, site, mail, "plan@example.org", tab.downloads)
        counts = upload(tab.page, root / "study")
        assert counts["found"].startswith(f"Found {SLICES} files"), counts
        assert len(search(tab.page, **{"Patient ID": PATIENT_ID})) == 1
        yield tab
    finally:
        tab.context.close()
    assert tab.recorder.errors == []
    assert tab.recorder.violations() == []


def _watch(tab: Tab, window: Page) -> Page:
    window.on("pageerror", lambda error: tab.recorder.errors.append(str(error)))
    window.on("console", tab.recorder.message)
    return window


def test_a_plan_without_the_advanced_viewer_offers_no_mpr(account: Tab) -> None:
    page = account.page
    # The row menu says why it is not there.
    page.get_by_test_id("row-actions").first.click()
    advanced = page.get_by_test_id("row-menu").get_by_role(
        "menuitem", name="Open in advanced Viewer", exact=True
    )
    expect(advanced).to_be_disabled()
    expect(advanced).to_have_attribute("title", "Not included in your plan.")
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("row-menu")).to_be_hidden()

    viewer = _watch(account, open_viewer(page))
    expect(viewer.locator(ACTIVE)).to_have_attribute("data-state", "ready", timeout=SLOW)
    mpr = viewer.get_by_role("button", name="MPR")
    expect(mpr).to_be_disabled()
    expect(mpr).to_have_attribute(
        "title", "MPR (the advanced viewer) is not included in your plan."
    )
    # Asking for MPR in the address (the advanced viewer's own) changes nothing: the plan comes
    # from the worker's study view, and the series opens as a stack.
    study_id = viewer.evaluate("() => location.hash.slice(1)")
    with viewer.expect_event("load"):
        viewer.evaluate("(id) => { location.hash = `${id}/mpr`; location.reload(); }", study_id)
    expect(viewer.locator(ACTIVE)).to_have_attribute("data-state", "ready")
    expect(viewer.get_by_test_id("mpr-viewport")).to_have_count(0)
    expect(mpr).to_be_disabled()
    expect(mpr).to_have_attribute("aria-pressed", "false")
    viewer.close()


def test_the_first_image_shows_before_the_series_is_read(account: Tab) -> None:
    page = account.page
    # The first image comes with the first read-ahead batch (BATCH_FILES files); every smaller
    # read (the rest of the series, the viewer's prefetch groups) waits until the test lets it
    # go, so the series cannot be complete while the first image is checked.
    held: list[Route] = []
    released = False

    def hold(route: Route) -> None:
        ids = json.loads(route.request.post_data or "{}").get("ids", [])
        if len(ids) < BATCH_FILES and not released:
            held.append(route)
        else:
            route.continue_()

    account.context.route(re.compile(r"/api/v1/blobs/read$"), hold)
    try:
        viewer = _watch(account, open_viewer(page))
        cell = viewer.locator(ACTIVE)
        expect(cell).to_have_attribute("data-state", "ready", timeout=SLOW)
        assert held, "the second batch is being held"
        assert cell.get_attribute("data-series-complete") != "true"
        assert int(cell.get_attribute("data-loaded-count") or "0") < SLICES
        # Let the rest come: the series completes, in its final order, with every slice.
        released = True
        for route in held:
            route.continue_()
        held.clear()
        expect(cell).to_have_attribute("data-series-complete", "true", timeout=SLOW)
        expect(cell).to_have_attribute("data-image-count", str(SLICES))
        expect(cell).to_have_attribute("data-state", "ready")
        viewer.close()
    finally:
        account.context.unroute(re.compile(r"/api/v1/blobs/read$"), hold)
        # A failed check leaves reads held: let them go for the next test.
        for route in held:
            route.continue_()

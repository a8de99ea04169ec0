"""Share Studies in the browser: two signed-in people and an anonymous visitor (user manual).

Ada shares a study with Bob (View, then Download) and Carol (Edit, then Admin); Bob opens it but
cannot download until Download is granted, then downloads the zip; Carol changes the description
everyone sees, and as Admin shares it onwards; a revoked share ends Bob's access at once. An
anonymous link opens the viewer without an account; an expired link and a modified link each
say what happened. No request carries the link's secret (ZK-1).
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
import zipfile
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pydicom
from playwright.sync_api import expect
from pydicom.uid import generate_uid

from tests.browser.app import (
    SLOW,
    log_in,
    log_out,
    open_download,
    open_viewer,
    row_action,
    sign_up,
    upload,
    wait_for_studies,
)
from tests.browser.conftest import Tab, open_tab
from tests.browser.test_browser_download import watch, write_study

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from playwright.sync_api import Browser, Locator, Page

    from tests.conftest import SmtpInbox
    from tests.live_server import Server

ACTIVE = "[data-testid=viewport][data-active=true]"


@contextmanager
def _tabs(browser: Browser, tmp_path: Path, names: list[str]) -> Iterator[dict[str, Tab]]:
    tabs = {name: open_tab(browser, tmp_path / name) for name in names}
    try:
        yield tabs
    finally:
        for tab in tabs.values():
            tab.context.close()
    for name, tab in tabs.items():
        assert tab.recorder.errors == [], name
        assert tab.recorder.violations() == [], name


def _source(page: Page, value: str) -> None:
    """Choose the Studies tab's source and wait for its worklist."""
    page.get_by_label("Source").select_option(value)
    expect(page.get_by_test_id("search-status")).to_have_text(
        re.compile(r"studies|No stud"), timeout=SLOW
    )


def _refresh(page: Page) -> str:
    page.get_by_role("button", name="Refresh").click()
    status = page.get_by_test_id("search-status")
    expect(status).to_have_text(re.compile(r"\d+ of \d+ studies|No stud"), timeout=SLOW)
    return status.inner_text()


def _manage(page: Page) -> Page:
    row_action(page, "Manage Shares")
    expect(page.get_by_test_id("shares-dialog")).to_be_visible()
    return page


def _new_share(page: Page, email: str, permission: str, message: str = "") -> None:
    dialog = page.get_by_test_id("shares-dialog")
    dialog.get_by_role("button", name="New Share").click()
    panel = dialog.get_by_test_id("share-panel")
    expect(panel.get_by_test_id("share-tip")).to_contain_text("enter your own email address")
    panel.get_by_label("Email").fill(email)
    panel.get_by_label("Email").dispatch_event("change")
    # The recipient check's text moves the Save button down when it arrives: wait for it, so
    # that the click lands on the button and not where the button was.
    expect(panel.get_by_test_id("recipient-check")).not_to_have_text("", timeout=SLOW)
    panel.get_by_label("Permission type").select_option(permission)
    if message:
        panel.get_by_label("Message").fill(message)
    panel.get_by_role("button", name="Save").click()
    expect(dialog.get_by_test_id("shares-status")).to_contain_text(
        re.compile(r"Shared with|Anonymous|pending"), timeout=SLOW
    )


def _edit_share(page: Page, email: str, permission: str) -> None:
    dialog = page.get_by_test_id("shares-dialog")
    dialog.get_by_test_id("share-row").filter(has_text=email).click()
    panel = dialog.get_by_test_id("share-panel")
    panel.get_by_label("Permission type").select_option(permission)
    panel.get_by_role("button", name="Save").click()
    expect(dialog.get_by_test_id("shares-status")).to_contain_text("was updated", timeout=SLOW)


def _close(page: Page) -> None:
    page.get_by_test_id("shares-dialog").get_by_role("button", name="Close").click()


def _create_link(page: Page, permission: str = "view") -> str:
    dialog = page.get_by_test_id("shares-dialog")
    dialog.get_by_role("button", name="Create anonymous link").click()
    panel = dialog.get_by_test_id("share-panel")
    panel.get_by_label("Permission type").select_option(permission)
    panel.get_by_role("button", name="Create link").click()
    url = panel.get_by_test_id("link-url")
    expect(url).to_have_value(re.compile(r"/s/[\w-]{22}#[\w-]{46}$"), timeout=SLOW)
    return url.input_value()


def _saved_zip(window: Page, path: Path) -> dict[str, bytes]:
    """Start download in a download window; the saved zip's files by name."""
    start = window.get_by_role("button", name="Start download")
    expect(start).to_be_enabled(timeout=SLOW)
    with window.expect_download(timeout=SLOW) as download:
        start.click()
    download.value.save_as(path)
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _first_image(viewer: Page) -> None:
    expect(viewer.locator(ACTIVE)).to_have_attribute("data-state", "ready", timeout=SLOW)


def _new_share_for(page: Page, email: str) -> tuple[Locator, Locator]:
    """In the open Manage Shares dialog: New Share, the email typed and checked."""
    dialog = page.get_by_test_id("shares-dialog")
    dialog.get_by_role("button", name="New Share").click()
    panel = dialog.get_by_test_id("share-panel")
    panel.get_by_label("Email").fill(email)
    panel.get_by_label("Email").dispatch_event("change")
    return dialog, panel


def test_sharing_between_people_and_with_an_anonymous_link(
    browser: Browser, site: Server, mail: SmtpInbox, tmp_path: Path
) -> None:
    with _tabs(browser, tmp_path, ["ada", "bob", "carol", "anonymous"]) as tabs:
        ada, bob, carol = tabs["ada"].page, tabs["bob"].page, tabs["carol"].page
        for name in ("bob", "carol", "ada"):
            sign_up(tabs[name].page, site, mail, f"{name}@example.org", tabs[name].downloads)
        originals = write_study(tmp_path / "study", slices=3)
        upload(ada, tmp_path / "study")

        # View: Bob sees it and opens it, but Download as zip is not offered.
        _manage(ada)
        dialog, panel = _new_share_for(ada, "bob@example.org")
        expect(panel.get_by_test_id("recipient-check")).to_contain_text(
            "Their key fingerprint", timeout=SLOW
        )
        panel.get_by_label("Message").fill("For your opinion")
        panel.get_by_role("button", name="Save").click()
        expect(dialog.get_by_test_id("shares-status")).to_have_text(
            "Shared with bob@example.org.", timeout=SLOW
        )
        expect(dialog.get_by_test_id("share-row")).to_have_count(1)
        expect(dialog.get_by_test_id("share-row")).to_contain_text("View")
        _close(ada)

        _source(bob, "shared")
        expect(bob.get_by_test_id("study-row")).to_have_count(1)
        expect(bob.get_by_test_id("study-row")).to_contain_text("ada@example.org")
        row_action(bob, "Properties")
        properties = bob.get_by_test_id("properties-dialog")
        expect(properties).to_contain_text("For your opinion")
        expect(properties).to_contain_text("View")
        properties.get_by_role("button", name="Close").click()
        viewer = open_viewer(bob)
        watch(tabs["bob"], viewer)
        _first_image(viewer)
        viewer.close()
        bob.get_by_test_id("row-actions").click()
        menu = bob.get_by_test_id("row-menu")
        expect(menu.get_by_role("menuitem", name="Download as zip")).to_be_disabled()
        expect(menu.get_by_role("menuitem", name="Manage Shares")).to_be_disabled()
        bob.keyboard.press("Escape")

        # Download: granted, and the zip holds the original files.
        _manage(ada)
        _edit_share(ada, "bob@example.org", "download")
        _close(ada)
        _refresh(bob)
        window = open_download(bob)
        watch(tabs["bob"], window)
        assert _saved_zip(window, tmp_path / "bob.zip") == originals
        window.close()

        # A key that changed (Bob reset his account, or a server stands in for him) is flagged,
        # and trusted again only once its fingerprint was compared.
        log_out(ada)
        key = "securepacs.fingerprints.ada@example.org"
        seen = json.loads(ada.evaluate("(key) => localStorage.getItem(key)", key))
        real = seen["bob@example.org"]
        old = "11111 22222 33333 44444 55555 66666 77777 88888"
        changed = json.dumps({**seen, "bob@example.org": old})
        ada.evaluate("([key, value]) => localStorage.setItem(key, value)", [key, changed])
        log_in(ada, "ada@example.org")
        wait_for_studies(ada)
        # My Account's form takes only the fingerprint the server serves now.
        ada.get_by_role("tab", name="My Account").click()
        form = ada.get_by_role("form", name="Trust a changed key")
        form.get_by_label("Their email").fill("bob@example.org")
        form.get_by_label("Fingerprint you compared").fill(old)
        form.get_by_role("button", name="Trust the new key").click()
        expect(form.get_by_test_id("trust-status")).to_contain_text(
            f"have the fingerprint {real}, not the one you compared", timeout=SLOW
        )
        ada.get_by_role("tab", name="Studies").click()
        wait_for_studies(ada)
        _manage(ada)
        dialog, panel = _new_share_for(ada, "bob@example.org")
        check = panel.get_by_test_id("recipient-check")
        expect(check).to_contain_text(f"fingerprint was {old}, now {real}", timeout=SLOW)
        check.get_by_role("button", name="Trust the new key").click()
        confirm = ada.get_by_role("dialog", name="Trust the new key")
        expect(confirm).to_contain_text(f"Trust {real} as the key of bob@example.org")
        confirm.get_by_role("button", name="I compared it: trust it").click()
        expect(check).to_have_text(
            f"Their key fingerprint: {real}. It is the one this browser saw before.",
            timeout=SLOW,
        )
        remembered = json.loads(ada.evaluate("(key) => localStorage.getItem(key)", key))
        assert remembered["bob@example.org"] == real
        _close(ada)

        # Edit: Carol changes the description; Ada and Bob see it.
        _manage(ada)
        _new_share(ada, "carol@example.org", "edit")
        _close(ada)
        _source(carol, "shared")
        row_action(carol, "Properties")
        properties = carol.get_by_test_id("properties-dialog")
        properties.get_by_label("Description").fill("Reviewed by Carol")
        properties.get_by_role("button", name="Save description").click()
        expect(properties.get_by_test_id("properties-status")).to_contain_text(
            "Saved", timeout=SLOW
        )
        properties.get_by_role("button", name="Close").click()
        for page in (ada, bob):
            _refresh(page)
            expect(page.get_by_test_id("study-row")).to_contain_text("Reviewed by Carol")

        # Edit also adds files: Carol adds one more slice of the same study.
        extra = tmp_path / "extra"
        extra.mkdir()
        first = pydicom.dcmread(next((tmp_path / "study").rglob("*.dcm")))
        first.SOPInstanceUID = generate_uid()
        first.file_meta.MediaStorageSOPInstanceUID = first.SOPInstanceUID
        first.save_as(extra / "extra.dcm", enforce_file_format=True)
        row_action(carol, "Add files")
        panel = carol.get_by_test_id("upload-panel")
        expect(panel.get_by_test_id("destination")).to_contain_text("Add to the shared study")
        panel.get_by_test_id("folder-input").set_input_files(extra)
        expect(panel.get_by_test_id("found")).to_have_text(
            re.compile(r"^Found 1 file"), timeout=SLOW
        )
        panel.get_by_role("button", name="Upload", exact=True).click()
        expect(panel.get_by_test_id("upload-finished")).to_have_text("Finished", timeout=SLOW)
        panel.get_by_role("button", name="Close").click()
        _refresh(ada)
        expect(ada.get_by_test_id("study-row").get_by_role("gridcell").nth(8)).to_have_text("4")

        # Admin: Carol shares onwards (to someone without an account: pending).
        carol.get_by_test_id("row-actions").click()
        expect(
            carol.get_by_test_id("row-menu").get_by_role("menuitem", name="Manage Shares")
        ).to_be_disabled()
        carol.keyboard.press("Escape")
        _manage(ada)
        _edit_share(ada, "carol@example.org", "admin")
        _close(ada)
        _refresh(carol)
        _manage(carol)
        _new_share(carol, "dave@example.org", "view")
        expect(
            carol.get_by_test_id("share-row").filter(has_text="dave@example.org")
        ).to_contain_text("pending")
        _close(carol)

        # Revoke: Bob's very next request is refused.
        _manage(ada)
        dialog = ada.get_by_test_id("shares-dialog")
        dialog.get_by_test_id("share-row").filter(has_text="bob@example.org").click()
        dialog.get_by_test_id("share-panel").get_by_role("button", name="Delete").click()
        expect(dialog.get_by_test_id("shares-status")).to_contain_text("access ended now")

        # An anonymous link: opened with no account, in the viewer.
        url = _create_link(ada)
        _close(ada)
        assert _refresh(bob) == "No study is shared with you yet."
        anonymous = tabs["anonymous"]
        mark = anonymous.recorder.mark()
        anonymous.page.goto(url)
        study = anonymous.page.get_by_test_id("link-study")
        expect(study).to_contain_text("ada@example.org", timeout=SLOW)
        expect(study).to_contain_text("Download, Test")
        expect(anonymous.page.get_by_test_id("link-page")).to_contain_text("allows viewing only")
        with anonymous.page.expect_popup() as popup:
            anonymous.page.get_by_role("button", name="Open in viewer").click()
        viewer = popup.value
        watch(anonymous, viewer)
        _first_image(viewer)
        fragment = url.split("#", 1)[1]
        for request in anonymous.recorder.requests[mark:]:
            assert fragment not in request.url and fragment.encode() not in request.body
            assert "#" not in request.url
        viewer.close()

        # A link with Download: the zip, byte for byte, without an account.
        _manage(ada)
        download_url = _create_link(ada, "download")
        _close(ada)
        linked = anonymous.context.new_page()
        linked.goto(download_url)
        expect(linked.get_by_test_id("link-study")).to_contain_text("ada@example.org", timeout=SLOW)
        linked.get_by_role("button", name="Download as zip").click()
        with linked.expect_popup() as popup:
            confirm = linked.get_by_role("dialog", name="Download as zip")
            confirm.get_by_role("button", name="Download", exact=True).click()
        window = popup.value
        watch(anonymous, window)
        contents = sorted(_saved_zip(window, tmp_path / "anonymous.zip").values())
        assert contents == sorted([*originals.values(), (extra / "extra.dcm").read_bytes()])
        window.close()
        linked.close()

        # A modified link, then an expired one: each with its own message. A new page each
        # time: a change of fragment alone would not load the page again.
        visitor = anonymous.context.new_page()
        position = url.index("#") + 10
        modified = url[:position] + ("A" if url[position] != "A" else "B") + url[position + 1 :]
        visitor.goto(modified)
        expect(visitor.get_by_test_id("link-error")).to_contain_text(
            "incomplete or was changed", timeout=SLOW
        )
        database = site.root / "server" / "securepacs.db"
        past = time.strftime("%Y-%m-%d %H:%M:%S.000000", time.gmtime(time.time() - 60))
        with sqlite3.connect(database) as db:
            db.execute("UPDATE link SET expires_at = ?", (past,))
        visitor.close()
        visitor = anonymous.context.new_page()
        visitor.goto(url)
        expect(visitor.get_by_test_id("link-error")).to_contain_text("expired", timeout=SLOW)
        visitor.close()

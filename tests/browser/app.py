"""What a person does in the web app, as Playwright steps (labels as the user manual names them)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from playwright.sync_api import expect

if TYPE_CHECKING:
    from pathlib import Path

    from playwright.sync_api import Page

    from tests.conftest import SmtpInbox
    from tests.live_server import Server

PASSWORD: Final = "correct horse battery staple"
# Argon2id in wasm and the first boot of the runtime take seconds on a loaded 2-core machine.
SLOW: Final = 120_000


def open_app(page: Page, site: Server) -> None:
    """Load the app and wait until the runtime is up and the first screen shows."""
    page.goto(site.url + "/")
    page.wait_for_selector("body[data-runtime-ms]", timeout=SLOW)


def register(
    page: Page, site: Server, inbox: SmtpInbox, email: str, password: str = PASSWORD
) -> None:
    """Register as a new user, then confirm through the link the real SMTP server received."""
    mails = len(inbox.messages)
    open_app(page, site)
    page.get_by_text("Register as a new user").click()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_label("Confirm password").fill(password)
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_test_id("registered")).to_contain_text(email, timeout=SLOW)
    # The server sends the mail before it answers the registration.
    assert len(inbox.messages) == mails + 1
    link = inbox.last_link()
    assert re.fullmatch(rf"{re.escape(site.url)}/confirm#[\w-]+", link), link
    page.goto(link)
    page.wait_for_selector("body[data-runtime-ms]", timeout=SLOW)
    expect(page.get_by_role("status")).to_contain_text(
        "Your email address is confirmed", timeout=SLOW
    )


def log_in(page: Page, email: str, password: str = PASSWORD, *, remember: bool = False) -> None:
    """Fill the Log in form and submit it (the next screen depends on the account)."""
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    if remember:
        page.get_by_label("Remember me").check()
    page.get_by_role("button", name="Log in").click()


def create_recovery_key(page: Page, downloads: Path) -> Path:
    """The first-initialization dialog: generate, download the key file, confirm it is stored."""
    dialog = page.get_by_test_id("recovery-generate-dialog")
    expect(dialog).to_be_visible(timeout=SLOW)
    dialog.get_by_role("button", name="Generate Key").click()
    shown = page.get_by_test_id("recovery-key-dialog")
    done = shown.get_by_role("button", name="Done")
    expect(done).to_be_disabled()
    with page.expect_download() as download:
        shown.get_by_role("button", name="Download key file").click()
    path = downloads / download.value.suggested_filename
    download.value.save_as(path)
    expect(done).to_be_disabled()  # downloaded, but not yet confirmed as stored
    shown.get_by_label("I have stored my recovery key somewhere private").check()
    done.click()
    return path


def wait_for_studies(page: Page) -> str:
    """The Studies tab after its first search; returns the status line."""
    status = page.get_by_test_id("search-status")
    expect(status).to_have_text(re.compile(r"studies|No studies|Upload Study"), timeout=SLOW)
    return status.inner_text()


def sign_up(page: Page, site: Server, inbox: SmtpInbox, email: str, downloads: Path) -> Path:
    """Register, confirm, log in, create the recovery key; returns the key file."""
    register(page, site, inbox, email)
    log_in(page, email)
    key = create_recovery_key(page, downloads)
    wait_for_studies(page)
    return key


def upload(page: Page, folder: Path, *, sender: str = "", message: str = "") -> dict[str, str]:
    """Upload Study with the folder picker; returns the panel's final counts by label."""
    page.get_by_role("button", name="Upload Study").click()
    panel = page.get_by_test_id("upload-panel")
    panel.get_by_label("Sender email").fill(sender)
    panel.get_by_label("Message").fill(message)
    expect(panel.get_by_test_id("destination")).to_have_text("Upload to Personal studies")
    upload_button = panel.get_by_role("button", name="Upload", exact=True)
    expect(upload_button).to_be_disabled()
    panel.get_by_test_id("folder-input").set_input_files(folder)
    expect(panel.get_by_test_id("found")).to_have_text(
        re.compile(r"^Found \d+ files"), timeout=SLOW
    )
    expect(upload_button).to_be_enabled()
    upload_button.click()
    expect(panel.get_by_test_id("upload-finished")).to_have_text("Finished", timeout=SLOW * 3)
    expect(panel).to_contain_text("Upload finished!")
    counts = panel.get_by_test_id("upload-counts")
    labels = counts.locator("dt").all_inner_texts()
    values = counts.locator("dd").all_inner_texts()
    result = dict(zip(labels, values, strict=True))
    result["found"] = panel.get_by_test_id("found").inner_text()
    panel.get_by_role("button", name="Close").click()
    return result


def grid_rows(page: Page) -> list[dict[str, str]]:
    """The rows the result grid shows, by column label."""
    headers = page.get_by_test_id("study-grid").locator(".grid-head [data-key]").all_inner_texts()
    rows = []
    for row in page.get_by_test_id("study-row").all():
        cells = row.get_by_role("gridcell").all_inner_texts()
        rows.append(dict(zip(headers, cells, strict=True)))
    return rows


def search(page: Page, **filters: str) -> list[dict[str, str]]:
    """Reset, set the filters (by their field labels), Search; the rows found."""
    form = page.get_by_role("form", name="Search filters")
    form.get_by_role("button", name="Reset").click()
    wait_for_studies(page)
    for label, value in filters.items():
        control = form.get_by_label(label, exact=True)
        if control.evaluate("e => e.tagName") == "SELECT":
            control.select_option(value)
        else:
            control.fill(value)
    form.get_by_role("button", name="Search").click()
    # The button is disabled from the click until the rows are in.
    expect(form.get_by_role("button", name="Search")).to_be_enabled()
    wait_for_studies(page)
    return grid_rows(page)


def log_out(page: Page) -> None:
    """Logout, back to the Log in page."""
    page.get_by_role("tab", name="Logout").click()
    expect(page.get_by_role("status")).to_have_text("You are logged out.")
    expect(page.get_by_role("button", name="Log in")).to_be_visible()


def row_action(page: Page, action: str, *, row: int = 0) -> None:
    """Open the action menu of the grid's row ``row`` and choose ``action``."""
    # As a person would: once the worklist has stopped changing under the pointer.
    expect(page.get_by_test_id("study-grid")).to_have_attribute("aria-busy", "false", timeout=SLOW)
    page.get_by_test_id("row-actions").nth(row).click()
    page.get_by_test_id("row-menu").get_by_role("menuitem", name=action, exact=True).click()


def open_viewer(page: Page, *, row: int = 0, advanced: bool = False) -> Page:
    """Open in new Window (or in advanced Viewer): the viewer's window."""
    with page.expect_popup() as popup:
        row_action(page, "Open in advanced Viewer" if advanced else "Open in new Window", row=row)
    viewer = popup.value
    viewer.set_default_timeout(SLOW)
    return viewer


def open_download(page: Page, *, row: int = 0) -> Page:
    """Download as zip, confirmed: the download window."""
    row_action(page, "Download as zip", row=row)
    dialog = page.get_by_role("dialog", name="Download as zip")
    with page.expect_popup() as popup:
        dialog.get_by_role("button", name="Download", exact=True).click()
    window = popup.value
    window.set_default_timeout(SLOW)
    return window

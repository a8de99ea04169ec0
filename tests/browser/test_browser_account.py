"""Account access in the browser: password reset and the recovery-key dialog, two-factor sign-in,
and My Account (statistics, recovery keys, password, sessions, the expired-session dialog)."""

from __future__ import annotations

import re
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pyotp
import pytest
from playwright.sync_api import expect

from tests.browser import app
from tests.browser.conftest import open_tab

if TYPE_CHECKING:
    from pathlib import Path

    from playwright.sync_api import Browser, Page

    from tests.browser.conftest import Tab
    from tests.conftest import SmtpInbox
    from tests.live_server import Server

pytestmark = pytest.mark.slow


def _reset_password(page: Page, site: Server, mail: SmtpInbox, email: str, new: str) -> None:
    """Forgot your password? -> the mailed link -> a new password."""
    page.get_by_text("Forgot your password?").click()
    expect(page.get_by_role("form", name="Forgot your password?")).to_contain_text("recovery key")
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Reset Password").click()
    expect(page.get_by_role("status")).to_contain_text("a password reset link is on its way")
    link = mail.last_link()
    assert re.fullmatch(rf"{re.escape(site.url)}/reset#[\w-]+", link), link
    page.goto(link)
    page.get_by_label("New password", exact=True).fill(new)
    page.get_by_label("Confirm new password").fill(new)
    page.get_by_role("button", name="Set new password").click()
    expect(page.get_by_role("status")).to_contain_text("Your password is reset")


def test_password_reset_then_recovery_key_restores_the_studies(
    tab: Tab, site: Server, mail: SmtpInbox, small_folder: Path
) -> None:
    page, email = tab.page, "reset.person@example.org"
    key_file = app.sign_up(page, site, mail, email, tab.downloads)
    app.upload(page, small_folder)
    expect(page.get_by_test_id("search-status")).to_have_text("3 of 3 studies")
    app.log_out(page)

    _reset_password(page, site, mail, email, "a brand new password")
    app.log_in(page, email, "a brand new password")
    dialog = page.get_by_test_id("recovery-dialog")
    expect(dialog).to_contain_text("Please enter the Recovery Key")
    dialog.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("status")).to_contain_text("Your studies stay locked")

    app.log_in(page, email, "a brand new password")
    dialog.get_by_test_id("recovery-key-text").fill("AAAAAAAA-" * 7 + "AAAAAAAA")
    dialog.get_by_role("button", name="Load Recovery Key", exact=True).click()
    expect(dialog.get_by_role("status")).not_to_be_empty()  # wrong key: said in the dialog
    dialog.get_by_test_id("recovery-key-text").fill("")
    dialog.get_by_test_id("recovery-key-file").set_input_files(key_file)
    dialog.get_by_role("button", name="Load Recovery Key", exact=True).click()
    expect(page.get_by_test_id("search-status")).to_have_text("3 of 3 studies", timeout=app.SLOW)
    app.log_out(page)

    # A second reset, recovered with the last usable password instead of the key.
    _reset_password(page, site, mail, email, "the third password")
    app.log_in(page, email, "the third password")
    dialog.get_by_label("or enter your last usable password").fill("a brand new password")
    dialog.get_by_role("button", name="Load Recovery Key", exact=True).click()
    expect(page.get_by_test_id("search-status")).to_have_text("3 of 3 studies", timeout=app.SLOW)


def test_two_factor_sign_in_with_a_code_and_with_a_recovery_code(
    tab: Tab, site: Server, mail: SmtpInbox
) -> None:
    page, email = tab.page, "two.factor@example.org"
    app.sign_up(page, site, mail, email, tab.downloads)
    page.get_by_role("tab", name="My Account").click()
    expect(page.get_by_test_id("two-factor-state")).to_have_text(
        "Two-factor authentication is off."
    )
    page.get_by_role("button", name="Turn on two-factor").click()
    setup = page.get_by_test_id("two-factor-dialog")
    expect(setup.get_by_test_id("totp-qr")).to_be_visible()
    totp = pyotp.TOTP(setup.get_by_test_id("totp-secret").inner_text())
    setup.get_by_label("Authenticator code").fill(totp.now())
    setup.get_by_role("button", name="Turn on").click()
    codes = page.get_by_test_id("two-factor-codes").inner_text().split()
    assert len(codes) == 10
    page.get_by_test_id("two-factor-codes-dialog").get_by_role("button", name="Done").click()
    expect(page.get_by_test_id("two-factor-state")).to_have_text("Two-factor authentication is on.")
    app.log_out(page)

    app.log_in(page, email)
    form = page.get_by_role("form", name="Two-factor authentication")
    form.get_by_label("Authenticator code").fill("000000")
    form.get_by_role("button", name="Verify").click()
    expect(form.get_by_role("status")).to_contain_text("code")
    # The next period's code: the server takes one step of drift and never a code twice.
    form.get_by_label("Authenticator code").fill(totp.at(time.time() + 30))
    form.get_by_role("button", name="Verify").click()
    app.wait_for_studies(page)
    app.log_out(page)

    def with_recovery_code(code: str) -> None:
        app.log_in(page, email)
        form.get_by_text("Use a two-factor recovery code instead").click()
        form.get_by_label("Two-factor recovery code").fill(code)
        form.get_by_role("button", name="Verify").click()

    with_recovery_code(codes[0])
    app.wait_for_studies(page)
    app.log_out(page)

    with_recovery_code(codes[0])
    expect(form.get_by_role("status")).not_to_be_empty()  # a used code does not work twice
    expect(page.get_by_role("tab", name="Studies")).to_have_count(0)

    # Turn it off again, with another recovery code; then the password alone signs in.
    form.get_by_label("Two-factor recovery code").fill(codes[1])
    form.get_by_role("button", name="Verify").click()
    app.wait_for_studies(page)
    page.get_by_role("tab", name="My Account").click()
    page.get_by_role("button", name="Turn off two-factor").click()
    off = page.get_by_role("dialog", name="Turn off two-factor authentication")
    off.get_by_label("Authenticator code or two-factor recovery code").fill(codes[2])
    off.get_by_role("button", name="Turn off").click()
    expect(page.get_by_test_id("two-factor-state")).to_have_text(
        "Two-factor authentication is off."
    )
    app.log_out(page)
    app.log_in(page, email)
    app.wait_for_studies(page)


def test_my_account_shows_usage_manages_keys_password_and_sessions(
    tab: Tab, browser: Browser, site: Server, mail: SmtpInbox, small_folder: Path, tmp_path: Path
) -> None:
    page, email = tab.page, "my.account@example.org"
    app.sign_up(page, site, mail, email, tab.downloads)
    app.upload(page, small_folder)
    page.get_by_role("tab", name="My Account").click()
    expect(page.get_by_test_id("account-type")).to_have_text("Free")
    expect(page.get_by_test_id("stat-studies")).to_have_text("3")
    expect(page.get_by_test_id("stat-files")).to_have_text("3")
    expect(page.get_by_test_id("stat-storage")).to_contain_text(" of 10.0 GB")
    expect(page.get_by_test_id("fingerprint")).to_have_text(re.compile(r"^[\d ]{40,}$"))
    uids = page.get_by_test_id("recovery-key-uids")
    expect(uids.locator("li")).to_have_count(1)
    expect(uids).not_to_contain_text("-")  # Key UIDs only, never key text

    # A second browser signs in; this one sees it in Sessions and revokes it. The other tab's
    # next request meets the expired-session dialog.
    other = open_tab(browser, tmp_path / "other")
    try:
        app.open_app(other.page, site)
        app.log_in(other.page, email)
        app.wait_for_studies(other.page)
        page.get_by_role("tab", name="Studies").click()
        page.get_by_role("tab", name="My Account").click()
        sessions = page.get_by_test_id("sessions")
        expect(sessions.locator("tbody tr")).to_have_count(2)
        expect(sessions).to_contain_text("This session")
        sessions.get_by_role("button", name="Revoke").click()
        expect(sessions.locator("tbody tr")).to_have_count(1)
        other.page.get_by_role("button", name="Refresh").click()
        expired = other.page.get_by_test_id("expired-session-dialog")
        expect(expired).to_contain_text("Your session has expired")
        expired.get_by_role("button", name="Sign in again").click()
        expect(other.page.get_by_role("button", name="Log in")).to_be_visible(timeout=app.SLOW)
    finally:
        other.context.close()

    # Create another recovery key, then invalidate them all.
    page.get_by_role("button", name="Create new recovery key").click()
    app.create_recovery_key(page, tab.downloads)
    expect(uids.locator("li")).to_have_count(2)
    page.get_by_role("button", name="Invalidate all recovery keys").click()
    page.get_by_role("dialog", name="Invalidate all recovery keys").get_by_role(
        "button", name="Invalidate all"
    ).click()
    expect(uids).to_have_text("No recovery key is available. Create one now.")

    # Change the password: the old one stops working, the new one opens the keys.
    form = page.get_by_role("form", name="Change password")
    form.get_by_label("Current password").fill(app.PASSWORD)
    form.get_by_label("New password", exact=True).fill("changed password 123")
    form.get_by_label("Confirm new password").fill("changed password 123")
    form.get_by_role("button", name="Change password").click()
    expect(form.get_by_role("status")).to_have_text(
        "Password changed. Your other sessions were signed out.", timeout=app.SLOW
    )
    app.log_out(page)
    app.log_in(page, email)
    expect(page.get_by_role("status")).to_have_class(re.compile("error"))
    app.log_in(page, email, "changed password 123")
    # No recovery key any more: the initialization prompt asks for one again.
    app.create_recovery_key(page, tab.downloads)
    expect(page.get_by_test_id("search-status")).to_have_text("3 of 3 studies", timeout=app.SLOW)


def test_a_session_about_to_end_shows_the_session_warning(
    tab: Tab, site: Server, mail: SmtpInbox
) -> None:
    page, email = tab.page, "warned.person@example.org"
    app.register(page, site, mail, email)
    # The app looks at its session once a minute; a fake clock makes that minute pass now.
    page.clock.install()
    app.log_in(page, email)
    app.create_recovery_key(page, tab.downloads)
    app.wait_for_studies(page)
    soon = datetime.now(UTC) + timedelta(minutes=3)
    with sqlite3.connect(site.root / "server" / "securepacs.db") as db:
        mine = "account_id = (SELECT id FROM account WHERE email = ?)"
        [stored] = db.execute(f"SELECT expires_at FROM session WHERE {mine}", (email,)).fetchone()  # noqa: S608
        # The same text form the server writes, three minutes from now.
        value = soon.strftime("%Y-%m-%d %H:%M:%S.%f") + stored[26:]
        db.execute(f"UPDATE session SET expires_at = ? WHERE {mine}", (value, email))  # noqa: S608
    page.clock.fast_forward(61_000)
    warning = page.get_by_test_id("session-warning-dialog")
    expect(warning).to_contain_text(re.compile(r"Your session ends in about [23] minutes"))
    warning.get_by_role("button", name="Later").click()
    expect(warning).to_have_count(0)

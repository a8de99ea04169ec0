"""The app as the browser loads it: the strict CSP, one origin, the runtime's progress, its cache
and its integrity checks, memory-only mode, and an upload that meets a failing server."""

from __future__ import annotations

import base64
import re
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect
from serve import CHROMIUM, CHROMIUM_ARGS  # wasm/, put on sys.path by this folder's conftest

from securepacs.server.edge import CSP
from tests.browser import app
from tests.browser.conftest import open_tab

if TYPE_CHECKING:
    from pathlib import Path

    from playwright.sync_api import Browser, Route

    from tests.browser.conftest import Tab
    from tests.conftest import SmtpInbox
    from tests.live_server import Server

pytestmark = pytest.mark.slow

# Every text the boot screen shows, as it changes (an init script runs before the app).
WATCH_BOOT = """
window.__bootTexts = [];
new MutationObserver(() => {
  const boot = document.querySelector("[data-testid=boot]");
  const text = boot?.textContent;
  if (text && window.__bootTexts.at(-1) !== text) window.__bootTexts.push(text);
}).observe(document, { childList: true, subtree: true, characterData: true });
"""


BOOT_MS = "Number(document.body.dataset.runtimeMs)"


def _runtime_requests(site: Server) -> int:
    log = (site.root / "server.log").read_text()
    return log.count("route=/dist/{path}")


def test_the_app_loads_under_the_strict_csp_from_its_own_origin_only(
    tab: Tab, site: Server
) -> None:
    page = tab.page
    page.add_init_script(WATCH_BOOT)
    response = page.goto(site.url + "/")
    assert response is not None
    assert response.headers["content-security-policy"] == CSP
    assert "'unsafe-eval'" not in CSP
    assert "'unsafe-inline'" not in CSP
    expect(page.get_by_role("button", name="Log in")).to_be_visible(timeout=app.SLOW)
    texts = page.evaluate("window.__bootTexts")
    assert any(
        re.fullmatch(r"Loading the encryption runtime: \d+ % of [\d.]+ MB", t) for t in texts
    )
    # The worker counts: its fetches go through the context as well.
    urls = [r.url for r in tab.recorder.requests]
    assert any("/dist/@" in url and url.endswith(".whl") for url in urls)
    assert all(url.startswith(site.url + "/") for url in urls), urls
    assert tab.recorder.violations() == []
    assert page.locator("script:not([src])").count() == 0


def test_the_second_visit_starts_from_the_browser_cache(
    browser: Browser, site: Server, tmp_path: Path
) -> None:
    # A normal profile on disk, as a person's browser has (a private context caches in memory
    # only, and drops entries as large as the wasm core).
    profile = browser.browser_type.launch_persistent_context(
        tmp_path / "profile", executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS)
    )
    try:
        page = profile.new_page()
        seen = []
        for _ in range(2):
            before = _runtime_requests(site)
            app.open_app(page, site)
            seen.append(_runtime_requests(site) - before)
            assert int(page.evaluate(BOOT_MS)) > 0  # booted (bench/browser.py times it)
    finally:
        profile.close()
    cold, warm = seen
    assert cold >= 10  # the manifest, boot.mjs, the Pyodide core, wheels, libsodium
    # Every runtime file is cached for good under its digest: the second visit asks for none.
    assert warm == 0


def test_a_runtime_file_that_does_not_match_the_manifest_is_refused(tab: Tab, site: Server) -> None:
    def tamper(route: Route) -> None:
        response = route.fetch()
        body = bytearray(response.body())
        body[len(body) // 2] ^= 1
        route.fulfill(response=response, body=bytes(body))

    tab.context.route(re.compile(r".*/dist/@\w+/wheels/securepacs-.*\.whl$"), tamper)
    tab.page.goto(site.url + "/")
    expect(tab.page.get_by_test_id("boot")).to_have_text(
        "SecurePACS could not start.", timeout=app.SLOW
    )
    expect(tab.page.get_by_role("button", name="Log in")).to_have_count(0)
    # The browser reports the integrity failure on the console; the test allows that one.
    tab.recorder.console.clear()


def test_memory_only_mode_is_said_when_the_browser_keeps_no_storage(
    browser: Browser, site: Server, tmp_path: Path
) -> None:
    blocked = open_tab(browser, tmp_path / "blocked")
    try:
        # What Safari's private mode and "block all site data" do: storage throws.
        blocked.page.add_init_script(
            "Object.defineProperty(window, 'localStorage', { get() {"
            " throw new DOMException('The operation is insecure.', 'SecurityError'); } });"
        )
        app.open_app(blocked.page, site)
        expect(blocked.page.get_by_test_id("memory-only")).to_contain_text("Memory-only mode")
        expect(blocked.page.get_by_role("button", name="Log in")).to_be_visible()
    finally:
        blocked.context.close()
    normal = open_tab(browser, tmp_path / "normal")
    try:
        app.open_app(normal.page, site)
        expect(normal.page.get_by_role("button", name="Log in")).to_be_visible()
        expect(normal.page.get_by_test_id("memory-only")).to_have_count(0)
    finally:
        normal.context.close()


def test_an_upload_retries_through_server_errors_and_warns_before_leaving(
    tab: Tab, site: Server, mail: SmtpInbox, small_folder: Path
) -> None:
    page = tab.page
    app.sign_up(page, site, mail, "retry.person@example.org", tab.downloads)
    failures = {"left": 3}

    def flaky(route: Route) -> None:
        if failures["left"] > 0:
            failures["left"] -= 1
            route.fulfill(status=503, content_type="application/problem+json", body="{}")
        else:
            route.continue_()

    tab.context.route(re.compile(r".*/api/v1/studies/commits$"), flaky)
    dialogs: list[str] = []

    def leave(dialog: object) -> None:
        dialogs.append(dialog.type)  # type: ignore[attr-defined]
        dialog.dismiss()  # type: ignore[attr-defined]

    page.on("dialog", leave)
    page.get_by_role("button", name="Upload Study").click()
    panel = page.get_by_test_id("upload-panel")
    panel.get_by_test_id("folder-input").set_input_files(small_folder)
    expect(panel.get_by_test_id("found")).to_have_text(re.compile("^Found 4 files"))
    panel.get_by_role("button", name="Upload", exact=True).click()
    expect(panel.get_by_test_id("upload-message")).to_contain_text(
        re.compile("retr", re.IGNORECASE), timeout=app.SLOW
    )
    # Leaving while the upload runs asks first; staying keeps the upload going.
    page.evaluate("() => { window.location.assign('/'); }")
    expect(panel.get_by_test_id("upload-finished")).to_have_text("Finished", timeout=app.SLOW)
    assert dialogs == ["beforeunload"]
    assert failures["left"] == 0
    expect(panel).to_contain_text("3 studies: 3 files uploaded, 1 unsupported files skipped.")


DROP = """([files]) => {
  const transfer = new DataTransfer();
  for (const [name, bytes] of files) {
    transfer.items.add(new File([Uint8Array.from(atob(bytes), (c) => c.charCodeAt(0))], name));
  }
  return transfer;
}"""


def test_files_dropped_on_the_panel_are_scanned_and_uploaded(
    tab: Tab, site: Server, mail: SmtpInbox, small_folder: Path
) -> None:
    page = tab.page
    app.sign_up(page, site, mail, "drop.person@example.org", tab.downloads)
    page.get_by_role("button", name="Upload Study").click()
    panel = page.get_by_test_id("upload-panel")
    files = [
        (p.name, base64.b64encode(p.read_bytes()).decode()) for p in sorted(small_folder.iterdir())
    ]
    transfer = page.evaluate_handle(DROP, [files])
    panel.get_by_test_id("dropzone").dispatch_event("drop", {"dataTransfer": transfer})
    expect(panel.get_by_test_id("found")).to_have_text("Found 4 files (1 unsupported, skipped)")
    panel.get_by_role("button", name="Upload", exact=True).click()
    expect(panel.get_by_test_id("upload-finished")).to_have_text("Finished", timeout=app.SLOW)
    panel.get_by_role("button", name="Close").click()
    expect(page.get_by_test_id("search-status")).to_have_text("3 of 3 studies")


def test_a_server_that_stops_answering_gets_the_network_error_dialog(
    tab: Tab, site: Server, mail: SmtpInbox
) -> None:
    page = tab.page
    app.sign_up(page, site, mail, "network.person@example.org", tab.downloads)
    site.kill()
    try:
        page.get_by_role("button", name="Refresh").click()
        dialog = page.get_by_test_id("network-error-dialog")
        expect(dialog).to_contain_text("SecurePACS cannot reach the server")
        expect(page.get_by_test_id("search-status")).to_contain_text("did not answer")
    finally:
        site.start()
    dialog.get_by_role("button", name="Try again").click()
    page.get_by_role("button", name="Refresh").click()
    expect(page.get_by_test_id("search-status")).to_have_text(
        "No studies yet. Use Upload Study to add one."
    )

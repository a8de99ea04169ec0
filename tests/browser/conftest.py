"""The web app in Debian's chromium, driven by Python Playwright, against a real server process.

Each test module gets one `securepacs serve` (SQLite, local blobs) that mails through a real SMTP
server (aiosmtpd), and one headless chromium. Every browser context records what the page sends
and what the browser reports, so each test can assert what crossed the wire (ZK-1) and that the
CSP was never violated.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import sync_playwright

from tests.browser.data import write_small_folder, write_upload_folder
from tests.conftest import SmtpInbox, running_inbox
from tests.live_server import Server

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Request

# wasm/serve.py is a script beside the runtime build, not a package.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "wasm"))
from serve import CHROMIUM, CHROMIUM_ARGS


@dataclass
class Sent:
    """One request the browser made."""

    method: str
    url: str
    body: bytes


@dataclass
class Recorder:
    """Every request, console message and page error of one browser context."""

    requests: list[Sent] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def request(self, request: Request) -> None:
        self.requests.append(Sent(request.method, request.url, request.post_data_buffer or b""))

    def message(self, message: ConsoleMessage) -> None:
        self.console.append(f"{message.type}: {message.text}")

    def violations(self) -> list[str]:
        """Console lines in which the browser reports a Content Security Policy refusal."""
        return [line for line in self.console if "Content Security Policy" in line]

    def mark(self) -> int:
        """The number of requests so far, to look at the ones sent after this point."""
        return len(self.requests)


@pytest.fixture(scope="module")
def mail() -> Iterator[SmtpInbox]:
    """A real SMTP server for the module's SecurePACS server."""
    yield from running_inbox()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, mail: SmtpInbox) -> Iterator[Server]:
    """`securepacs serve` with the built app, mailing to ``mail``."""
    index = Path(__file__).resolve().parents[2] / "client" / "web" / "dist" / "index.html"
    if not index.is_file():
        pytest.skip("client/web/dist is not built: `just web` (`just test` builds it first)")
    server = Server(tmp_path_factory.mktemp("site"))
    server.env["SECUREPACS_SMTP_URL"] = f"smtp://127.0.0.1:{mail.port}"
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian chromium (Playwright never downloads a browser here)."""
    if not CHROMIUM.is_file():
        pytest.skip("/usr/bin/chromium is missing: `apt-get install -y chromium`")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS)
        )
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Tab:
    """A page in its own browser context, with what it recorded."""

    page: Page
    context: BrowserContext
    recorder: Recorder
    downloads: Path


def open_tab(browser: Browser, downloads: Path) -> Tab:
    """A fresh context (no cookies, empty cache) and page, recording everything."""
    context = browser.new_context(accept_downloads=True)
    recorder = Recorder()
    # Context-wide: the worker's fetches are part of what the page sends.
    context.on("request", recorder.request)
    page = context.new_page()
    page.on("console", recorder.message)
    page.on("pageerror", lambda error: recorder.errors.append(str(error)))
    page.set_default_timeout(60_000)
    downloads.mkdir(parents=True, exist_ok=True)
    return Tab(page, context, recorder, downloads)


@pytest.fixture
def tab(browser: Browser, tmp_path: Path) -> Iterator[Tab]:
    """A fresh tab; after the test, no page error and no CSP refusal may have happened."""
    opened = open_tab(browser, tmp_path / "downloads")
    try:
        yield opened
    finally:
        opened.context.close()
    assert opened.recorder.errors == []
    assert opened.recorder.violations() == []


@pytest.fixture(scope="module")
def dicom_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pydicom's test files (every transfer syntax it ships), a canary study and a text file."""
    root = tmp_path_factory.mktemp("upload") / "study-folder"
    write_upload_folder(root)
    return root


@pytest.fixture
def small_folder(tmp_path: Path) -> Path:
    """Three small DICOM files of three studies and one text file."""
    root = tmp_path / "small"
    write_small_folder(root)
    return root

"""Browser benchmark: the web app in Chromium, each figure beside its baseline.

Run from the repository root after ``just web``: ``.venv/bin/python bench/browser.py
[--rounds N] [--slices N] [--megabytes N]``. It starts a real ``securepacs serve`` (SQLite and
the local blob store in a temporary folder) and drives the real app with Playwright on Debian's
Chromium (``/usr/bin/chromium``, started by this script; Playwright never downloads a browser
here). Figures:

- *start*: a first visit on a new browser profile (empty cache) against a second visit on the
  same profile (the runtime under ``/dist/@<digest>/`` is immutable, so it comes from the
  cache): navigation start to the worker's ready signal, and the worker's own boot time
  (``document.body.dataset.runtimeMs``); then the bytes that crossed the network on a first
  visit, a second one, and a second one in a private window (memory cache only);
- *crypto*: bench/crypto_kernel.py (the SecurePACS stream seal and open on ``--megabytes`` of
  data) inside Pyodide in a Chromium worker, against the same kernel on CPython with PyNaCl in
  this process. The Chromium page is served by wasm/serve.py with the production CSP;
- *upload*: a synthetic CT folder (bench/synthetic.py) uploaded through the app's upload panel
  (click on Upload to "Finished": read, seal, send, commit in the worker), against the same
  files sent unencrypted from the same tab, to the same server and account, as blobs through
  the blob API, with the client's batching and the client's 4 requests in flight. The folder
  scan that runs before Upload is enabled is reported on its own line. Every round signs up a
  fresh account, so nothing is deduplicated;
- *main thread*: the longest task of the tab's main thread (Long Tasks API, tasks over 50 ms)
  while the encrypted upload runs, and while the plain one runs.

Timed windows run with Playwright detached from the browser (see ``Chromium``): attached, it
makes Chromium copy every request body into DevTools events, which slowed an 8 MiB upload
request about tenfold and put long tasks on the thread that sent it. The page times itself
(``MARKS_SCRIPT``); the server's side tells when a window is over.

Every figure is the best of ``--rounds`` rounds, except the longest task, which is the worst
seen. Nothing is asserted: the table shows each target and whether this run met it. Figures
are wall-clock: run on an idle machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import crypto_kernel
import httpx
import msgspec
import synthetic
import websockets.sync.client
from accounts import _free_port, _outbox_tokens, _server_command
from playwright.sync_api import expect, sync_playwright

from securepacs.client.accounts import AccountFlows
from securepacs.client.api import StatsView
from securepacs.client.httpx_transport import HttpxTransport
from securepacs.client.transport import CSRF_HEADER, SESSION_COOKIE
from securepacs.client.upload import BATCH_ITEM_BYTES, BATCH_ITEMS, PART_BYTES, UploadOptions

ROOT: Final = Path(__file__).resolve().parents[1]
# wasm/serve.py is a script beside the runtime build, not a package.
sys.path.insert(0, str(ROOT / "wasm"))
from serve import CHROMIUM, CHROMIUM_ARGS, StaticSite, serve_in_thread  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from playwright.sync_api import Browser, BrowserContext, Page, Playwright

# Started by this script (see Chromium) with a DevTools port; the last three are what
# Playwright's own launch adds so that a tab without a visible window runs at full speed.
DEVTOOLS_FLAGS: Final = (
    "--headless",
    "--remote-debugging-port=0",
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
    "--disable-renderer-backgrounding",
)
HOST: Final = "127.0.0.1"
DIST_DIR: Final = ROOT / "wasm" / "dist"
APP_DIR: Final = ROOT / "client" / "web" / "dist"
KERNEL: Final = Path(__file__).resolve().with_name("crypto_kernel.py")
# A throwaway account on a throwaway server.
PASSWORD: Final = "correct horse battery staple browser bench"  # noqa: S105
ROUNDS: Final = 3
SLICES: Final = 200
MEGABYTES: Final = 64
JOBS: Final = UploadOptions().jobs
UPLOAD_RATIO_BAR: Final = 0.5
LONG_TASK_BAR_MS: Final = 100.0
START_TIMEOUT_S: Final = 60.0
PAGE_TIMEOUT_MS: Final = 180_000
UPLOAD_TIMEOUT_S: Final = 900.0
# An unattended upload whose tab sent nothing for this long has failed or stalled.
IDLE_TIMEOUT_S: Final = 60.0
POLL_S: Final = 0.2
# Lines of the server's access log: the app's first request, and the benchmark's own polling.
STATUS_ROUTE: Final = "route=/api/v1/me "
STATS_ROUTE: Final = "route=/api/v1/studies/stats "
# Long tasks are reported by an observer callback a little after they end.
LONG_TASK_SETTLE_MS: Final = 300

# Installed before any page script (Playwright's init scripts are not subject to the page's
# CSP). It keeps the page's own clock readings of the moments the benchmark times: the runtime
# ready signal, the scan (the folder input's change to "Found N files") and the upload (the
# click on Upload to the "Finished" heading), plus every long task of the main thread.
MARKS_SCRIPT: Final = """
(() => {
  const bench = { longtasks: [], observing: true, ready: null, scan: {}, upload: {} };
  window.__bench = bench;
  try {
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        bench.longtasks.push([entry.startTime, entry.duration]);
      }
    }).observe({ type: "longtask", buffered: true });
  } catch {
    bench.observing = false;
  }
  document.addEventListener("change", (event) => {
    if (event.target?.dataset?.testid === "folder-input") bench.scan = { start: performance.now() };
  }, true);
  document.addEventListener("click", (event) => {
    const button = event.target instanceof Element ? event.target.closest("button") : null;
    if (button?.textContent === "Upload" && button.closest("[data-testid=upload-panel]")) {
      bench.upload = { start: performance.now() };
    }
  }, true);
  new MutationObserver(() => {
    const now = performance.now();
    if (bench.ready === null && document.body?.dataset.runtimeMs !== undefined) bench.ready = now;
    const found = document.querySelector("[data-testid=found]")?.textContent ?? "";
    if (bench.scan.start !== undefined && bench.scan.end === undefined
        && /^Found \\d+ files/.test(found)) {
      bench.scan.end = now;
    }
    if (bench.upload.start !== undefined && bench.upload.end === undefined
        && document.querySelector("[data-testid=upload-finished]")) {
      bench.upload.end = now;
    }
  }).observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
})();
"""

# Transfer and body sizes of every resource of a page or worker (Resource Timing; same origin,
# so the sizes are exposed). transferSize is 0 for a response served from the cache.
RESOURCE_BYTES_JS: Final = """
() => performance.getEntriesByType("navigation").concat(performance.getEntriesByType("resource"))
  .reduce(([sent, body], e) => [sent + e.transferSize, body + e.decodedBodySize], [0, 0])
"""

# The plain baseline: the same File objects' bytes sent as blobs, unencrypted, from the page.
# The grouping is the encrypted client's (securepacs.client.upload): files up to
# BATCH_ITEM_BYTES go many to a POST /blobs/batch (at most BATCH_ITEMS and PART_BYTES), larger
# ones alone (PUT /blobs/{id}, or in parts); JOBS requests in flight; a SHA-256 per blob, as
# the server asks.
PLAIN_UPLOAD_JS: Final = """
async ({ inputId, jobs, batchItemBytes, batchItems, partBytes }) => {
  const files = Array.from(document.getElementById(inputId).files);
  const started = performance.now();
  const csrf = { "X-SecurePACS-CSRF": "1" };
  const newId = () => crypto.getRandomValues(new Uint8Array(16));
  const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  const sha256 = async (data) => new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  const read = async (blob) => new Uint8Array(await blob.arrayBuffer());
  const checked = async (response) => {
    if (!response.ok) throw new Error(`HTTP ${response.status}: ${await response.text()}`);
    return response.json();
  };
  const put = async (path, data) => checked(await fetch(path, {
    method: "PUT",
    headers: {
      ...csrf,
      "content-type": "application/octet-stream",
      "content-digest": `sha-256=:${btoa(String.fromCharCode(...(await sha256(data))))}:`,
    },
    body: data,
  }));
  const msgpackBatch = (items) => {
    // A msgpack array of [bin id, bin sha256, bin data], the server's BatchItem.
    let length = items.length < 16 ? 1 : 3;
    for (const [, , data] of items) length += 1 + 18 + 34 + 5 + data.length;
    const out = new Uint8Array(length);
    const view = new DataView(out.buffer);
    let at = 0;
    if (items.length < 16) {
      out[at++] = 0x90 | items.length;
    } else {
      out[at++] = 0xdc;
      view.setUint16(at, items.length);
      at += 2;
    }
    for (const [id, digest, data] of items) {
      out[at++] = 0x93;
      out[at++] = 0xc4; out[at++] = 16; out.set(id, at); at += 16;
      out[at++] = 0xc4; out[at++] = 32; out.set(digest, at); at += 32;
      out[at++] = 0xc6; view.setUint32(at, data.length); at += 4;
      out.set(data, at); at += data.length;
    }
    return out;
  };
  const batches = [];
  const alone = [];
  let members = [];
  let size = 0;
  for (const file of files) {
    if (file.size > batchItemBytes) {
      alone.push(file);
      continue;
    }
    if (members.length && (size + file.size > partBytes || members.length === batchItems)) {
      batches.push(members);
      members = [];
      size = 0;
    }
    members.push(file);
    size += file.size;
  }
  if (members.length) batches.push(members);
  let stored = 0;
  let requests = 0;
  const tasks = batches.map((batch) => async () => {
    const items = [];
    for (const file of batch) {
      const data = await read(file);
      items.push([newId(), await sha256(data), data]);
    }
    const answer = await checked(await fetch("/api/v1/blobs/batch", {
      method: "POST",
      headers: { ...csrf, "content-type": "application/msgpack" },
      body: msgpackBatch(items),
    }));
    stored += answer.stored;
    requests += 1;
  });
  for (const file of alone) {
    tasks.push(async () => {
      const id = hex(newId());
      if (file.size <= partBytes) {
        await put(`/api/v1/blobs/${id}`, await read(file));
        requests += 1;
      } else {
        const status = await checked(await fetch(`/api/v1/blobs/${id}`, {
          method: "POST",
          headers: { ...csrf, "content-type": "application/json" },
          body: JSON.stringify({ size: file.size }),
        }));
        for (let n = 0; n < status.parts; n++) {
          const part = file.slice(n * status.part_size, (n + 1) * status.part_size);
          await put(`/api/v1/blobs/${id}/parts/${n}`, await read(part));
        }
        const complete = { method: "POST", headers: csrf };
        await checked(await fetch(`/api/v1/blobs/${id}/complete`, complete));
        requests += 2 + status.parts;
      }
      stored += 1;
    });
  }
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) await tasks[next++]();
  };
  await Promise.all(Array.from({ length: jobs }, worker));
  const ended = performance.now();
  const bytes = files.reduce((total, file) => total + file.size, 0);
  return { start: started, end: ended, files: files.length, bytes, stored, requests };
}
"""

# Starts the plain upload and returns at once; the result lands in window.__plainResult.
PLAIN_START_JS: Final = f"""
(args) => {{
  window.__plainResult = undefined;
  ({PLAIN_UPLOAD_JS.strip()})(args).then(
    (result) => {{ window.__plainResult = result; }},
    (error) => {{ window.__plainResult = {{ error: String(error) }}; }},
  );
}}
"""

# The Chromium crypto page: one module worker (wasm/dist/worker.mjs, the runtime's test worker)
# that boots Pyodide and runs one Python call per message. No inline script: the CSP forbids it.
CRYPTO_HTML: Final = b"""<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>SecurePACS browser benchmark</title>
    <script type="module" src="/page.mjs"></script>
  </head>
  <body></body>
</html>
"""
CRYPTO_PAGE_MJS: Final = b"""
const worker = new Worker(new URL("/dist/worker.mjs", import.meta.url), { type: "module" });
const pending = new Map();
const violations = [];
let nextId = 1;
worker.addEventListener("message", ({ data }) => {
  if (data.kind === "violation") {
    violations.push(data.text);
    return;
  }
  const settle = pending.get(data.id);
  if (settle) {
    pending.delete(data.id);
    settle({ ...data, violations: [...violations] });
  }
});
worker.addEventListener("error", (event) => {
  for (const settle of pending.values()) {
    settle({ ok: false, error: `worker error: ${event.message}` });
  }
  pending.clear();
});
window.benchRun = (request) =>
  new Promise((resolve) => {
    const id = nextId++;
    pending.set(id, resolve);
    worker.postMessage({ id, request });
  });
"""


# -- the server ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    """A running ``securepacs serve``: where it answers, its data and its log."""

    base_url: str
    data_dir: Path
    log: Path

    def log_lines(self, needle: str, *, without: str | None = None) -> int:
        """How many lines of the server's log hold ``needle`` (and not ``without``)."""
        text = self.log.read_text(errors="replace")
        return sum(
            1
            for line in text.splitlines()
            if needle in line and (without is None or without not in line)
        )


def _wait_until_up(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    with httpx.Client(base_url=base_url, timeout=2) as client:
        while time.monotonic() < deadline and process.poll() is None:
            with contextlib.suppress(httpx.TransportError):
                if client.get("/ready").status_code == 200:
                    return
            time.sleep(0.1)
    tail = log.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"the server did not come up; its log ends with:\n{tail}")


@contextlib.contextmanager
def running_server(scratch: Path) -> Iterator[Server]:
    """``securepacs serve`` on a free port of 127.0.0.1, SQLite and blobs under ``scratch``."""
    port = _free_port()
    base_url = f"http://{HOST}:{port}"
    data_dir = scratch / "server"
    data_dir.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECUREPACS_")}
    env |= {
        "SECUREPACS_HOST": HOST,
        "SECUREPACS_PORT": str(port),
        "SECUREPACS_DATA_DIR": str(data_dir),
        "SECUREPACS_PUBLIC_URL": base_url,
    }
    log = scratch / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            _server_command(), env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        _wait_until_up(process, base_url, log)
        yield Server(base_url, data_dir, log)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(15)


# -- accounts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    """A confirmed account, and a session of its own for watching the server's side."""

    address: str
    session: str


def _outbox_token(outbox: Path, address: str) -> str:
    """The confirmation token mailed to ``address`` (the link's part after '#')."""
    token = _outbox_tokens(outbox).get(address)
    if token is None:
        raise RuntimeError("no confirmation mail in the outbox")
    return token


async def _sign_up(server: Server, address: str) -> Account:
    async with HttpxTransport(server.base_url) as transport:
        flows = AccountFlows(transport)
        await flows.register(address, PASSWORD)
        await flows.confirm(_outbox_token(server.data_dir / "outbox", address))
        await flows.login(address, PASSWORD)
        if transport.session is None:
            raise RuntimeError("signing in set no session cookie")
        return Account(address, transport.session)


def sign_up(server: Server, address: str) -> Account:
    """Register, confirm and sign in through the API, as the CLI does.

    Run before Playwright starts: its synchronous API keeps an event loop in this thread.
    """
    return asyncio.run(_sign_up(server, address))


class Watcher:
    """Follows an upload from the server's side while no DevTools client is attached."""

    def __init__(self, server: Server, account: Account) -> None:
        self._server = server
        self._client = httpx.Client(
            base_url=server.base_url,
            headers={CSRF_HEADER: "1"},
            cookies={SESSION_COOKIE: account.session},
            timeout=60,
        )

    def stats(self) -> StatsView:
        """The account's studies, files and stored bytes."""
        response = self._client.get("/api/v1/studies/stats")
        response.raise_for_status()
        return msgspec.json.decode(response.content, type=StatsView)

    def _activity(self) -> int:
        return self._server.log_lines("securepacs.access", without=STATS_ROUTE)

    def wait(self, done: Callable[[StatsView], bool]) -> None:
        """Poll until ``done(stats)``, or until the page has sent nothing for a while.

        The second case is an upload that failed or stalled: the caller attaches again to read
        what the page says.
        """
        deadline = time.monotonic() + UPLOAD_TIMEOUT_S
        activity, changed = self._activity(), time.monotonic()
        while time.monotonic() < deadline:
            if done(self.stats()):
                return
            time.sleep(POLL_S)
            now = self._activity()
            if now != activity:
                activity, changed = now, time.monotonic()
            elif time.monotonic() - changed > IDLE_TIMEOUT_S:
                return

    def close(self) -> None:
        self._client.close()


# -- Chromium -----------------------------------------------------------------------------------


class Chromium:
    """Debian's Chromium with a DevTools port, which Playwright attaches to and leaves.

    Playwright turns on the DevTools network agent of every page and worker it is attached
    to, and with it Chromium copies each request body into the agent's events, on the thread
    that sent the request: an 8 MiB ``fetch`` body took about 1 s instead of about 0.15 s, and
    the page's main thread showed long tasks of the same length. So every timed window runs
    with Playwright detached (``leave``): the page keeps its own clock readings (MARKS_SCRIPT),
    the benchmark learns from the server's side when the window is over, then attaches again
    to read them. A Chromium of Playwright's own launch could not be left that way: its
    pages close with the connection. The profile's own context survives.
    """

    def __init__(self, playwright: Playwright, profile: Path, problems: list[str]) -> None:
        self._playwright = playwright
        self._problems = problems
        self._browser: Browser | None = None
        profile.mkdir(parents=True)
        command = [str(CHROMIUM), *CHROMIUM_ARGS, *DEVTOOLS_FLAGS, f"--user-data-dir={profile}"]
        self._process = subprocess.Popen(
            [*command, "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._endpoint = f"http://{HOST}:{self._devtools_port(profile)}"

    def _devtools_port(self, profile: Path) -> int:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and self._process.poll() is None:
            with contextlib.suppress(FileNotFoundError):
                lines = port_file.read_text().split()
                if len(lines) >= 2:
                    return int(lines[0])
            time.sleep(0.05)
        self.close()
        raise RuntimeError("Chromium did not open its DevTools port")

    @property
    def browser(self) -> Browser:
        """The attached browser (attaching if need be)."""
        if self._browser is None:
            self._browser = self._playwright.chromium.connect_over_cdp(self._endpoint)
        return self._browser

    def attach(self) -> BrowserContext:
        """Attach Playwright; the profile's context, where pages outlive ``leave``."""
        context = self.browser.contexts[0]
        context.set_default_timeout(PAGE_TIMEOUT_MS)
        return context

    def new_page(self) -> Page:
        """A new tab in the profile, with the marks script and the problem collector."""
        context = self.attach()
        context.add_init_script(MARKS_SCRIPT)
        page = context.new_page()
        self._watch(page)
        return page

    def page(self, base_url: str) -> Page:
        """Attach again and find the tab showing ``base_url``."""
        for page in self.attach().pages:
            if page.url.startswith(base_url):
                self._watch(page)
                return page
        raise RuntimeError("the app's tab is gone")

    def saving(self, folder: Path) -> SavedDownloads:
        """Have Chromium save downloads in ``folder`` whether Playwright is attached or not."""
        return SavedDownloads(self._endpoint, folder)

    def leave(self) -> None:
        """Detach Playwright, and so every DevTools agent; the tabs and workers run on."""
        if self._browser is not None:
            self._browser.close()
            self._browser = None

    def close(self) -> None:
        """Detach and end the browser process."""
        self.leave()
        self._process.terminate()
        try:
            self._process.wait(15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(15)

    def _watch(self, page: Page) -> None:
        """Collect what goes wrong in the tab: uncaught errors, console errors, HTTP errors."""
        problems = self._problems
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.on(
            "console",
            lambda message: (
                problems.append(f"console.{message.type}: {message.text}")
                # Failed loads are reported with their address by the response handler below.
                if message.type == "error"
                and not message.text.startswith("Failed to load resource")
                else None
            ),
        )
        page.on(
            "response",
            lambda response: (
                problems.append(f"HTTP {response.status}: {response.request.method} {response.url}")
                if response.status >= 400 and not _expected_refusal(response.status, response.url)
                else None
            ),
        )


class SavedDownloads:
    """A browser-level DevTools session that lets Chromium save downloads, and hears them end.

    Headless Chromium saves a download only when a DevTools client asks it to, and only while
    that client is connected: Playwright's own setting goes when it detaches, and the file with
    it. This session attaches to no page or worker, so no DevTools agent runs in them (see
    :class:`Chromium`). Open it with Playwright detached: the last client to set the download
    behaviour decides where files go.
    """

    def __init__(self, endpoint: str, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        address = httpx.get(f"{endpoint}/json/version", timeout=10).json()["webSocketDebuggerUrl"]
        self._socket = websockets.sync.client.connect(address, max_size=None)
        self._ids = 0
        self._call(
            "Browser.setDownloadBehavior",
            {"behavior": "allowAndName", "downloadPath": str(folder), "eventsEnabled": True},
        )
        self._folder = folder

    def _call(self, method: str, params: dict[str, object]) -> None:
        self._ids += 1
        self._socket.send(json.dumps({"id": self._ids, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv(timeout=START_TIMEOUT_S))
            if message.get("id") == self._ids:
                if "error" in message:
                    raise RuntimeError(f"DevTools refused {method}: {message['error']}")
                return

    def wait(self, timeout: float) -> tuple[Path, float]:
        """The next download's saved file, and the epoch second Chromium said it was whole."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = json.loads(self._socket.recv(timeout=left))
            except TimeoutError:
                break
            if message.get("method") != "Browser.downloadProgress":
                continue
            state = message["params"]["state"]
            if state == "completed":
                return self._folder / message["params"]["guid"], time.time()
            if state == "canceled":
                raise RuntimeError("Chromium cancelled the download")
        raise RuntimeError(f"no download ended within {timeout:.0f} s")

    def close(self) -> None:
        self._socket.close()


def _expected_refusal(status: int, url: str) -> bool:
    # On load the app asks who is signed in; signed out, the answer is a 401 by design.
    return status == 401 and url.endswith("/api/v1/me/")


@contextlib.contextmanager
def chromium(playwright: Playwright, profile: Path, problems: list[str]) -> Iterator[Chromium]:
    """A Chromium on a new profile, ended afterwards."""
    browser = Chromium(playwright, profile, problems)
    try:
        yield browser
    finally:
        browser.close()


# -- start-up -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    """One visit of the app, up to the runtime's ready signal, timed by the page itself."""

    ready_ms: float
    runtime_ms: float


@dataclass(frozen=True)
class Traffic:
    """What one visit loaded, and how much of it came over the network (Resource Timing)."""

    sent_bytes: int
    loaded_bytes: int


@dataclass(frozen=True)
class Starts:
    """The best visit of each kind, and the bytes of each kind of visit."""

    cold: Start
    warm: Start
    first: Traffic
    second: Traffic
    private_second: Traffic


def _ready(page: Page) -> Start:
    page.wait_for_function("() => window.__bench?.ready != null", polling=100)
    expect(page.get_by_role("button", name="Log in", exact=True)).to_be_visible()
    ready = float(page.evaluate("() => window.__bench.ready"))
    return Start(ready, float(page.evaluate("() => Number(document.body.dataset.runtimeMs)")))


def timed_visit(browser: Chromium, server: Server) -> Start:
    """Open the app in a new tab and leave it alone until it has asked the server who is in.

    The app's first request (GET /api/v1/me/) follows the runtime's ready signal; the server's
    access log shows it without any DevTools client attached to the page.
    """
    page = browser.new_page()
    calls = server.log_lines(STATUS_ROUTE)
    page.goto(server.base_url + "/", wait_until="commit")
    page.wait_for_function("() => window.__bench !== undefined")
    browser.leave()
    deadline = time.monotonic() + PAGE_TIMEOUT_MS / 1000
    while server.log_lines(STATUS_ROUTE) <= calls and time.monotonic() < deadline:
        time.sleep(POLL_S)
    page = browser.page(server.base_url)
    start = _ready(page)
    page.close()
    return start


def _traffic(page: Page) -> Traffic:
    sent, loaded = page.evaluate(RESOURCE_BYTES_JS)
    for worker in page.workers:
        worker_sent, worker_loaded = worker.evaluate(RESOURCE_BYTES_JS)
        sent, loaded = sent + worker_sent, loaded + worker_loaded
    return Traffic(int(sent), int(loaded))


def counted_visits(context: BrowserContext, base_url: str, visits: int) -> list[Traffic]:
    """Bytes of ``visits`` visits in a row, attached all along (sizes do not depend on it)."""
    context.add_init_script(MARKS_SCRIPT)
    counted = []
    for _ in range(visits):
        page = context.new_page()
        page.goto(base_url + "/")
        _ready(page)
        counted.append(_traffic(page))
        page.close()
    return counted


def start_up(
    playwright: Playwright, server: Server, rounds: int, scratch: Path, problems: list[str]
) -> Starts:
    """Best cold and warm starts (a new profile per round), and the bytes each one moves.

    A profile caches on disk, as a person's browser does. A private window (an incognito
    context) caches in memory only, where Chromium keeps no entry larger than an eighth of
    that cache; its second visit is counted too.
    """
    timings: list[tuple[Start, Start]] = []
    for round_ in range(rounds):
        with chromium(playwright, scratch / f"start-{round_}", problems) as browser:
            cold, warm = timed_visit(browser, server), timed_visit(browser, server)
        timings.append((cold, warm))
        print(
            f"start round {round_ + 1}: cold {cold.ready_ms:.0f} ms (runtime "
            f"{cold.runtime_ms:.0f} ms), warm {warm.ready_ms:.0f} ms (runtime "
            f"{warm.runtime_ms:.0f} ms)"
        )
    with chromium(playwright, scratch / "start-bytes", problems) as browser:
        first, second = counted_visits(browser.attach(), server.base_url, 2)
        private = browser.browser.new_context()
        _, private_second = counted_visits(private, server.base_url, 2)
        private.close()
    print(
        f"bytes sent: first visit {first.sent_bytes / 1e6:.2f} MB of "
        f"{first.loaded_bytes / 1e6:.2f} MB loaded, second {second.sent_bytes / 1e6:.2f} MB, "
        f"private window's second {private_second.sent_bytes / 1e6:.2f} MB"
    )
    return Starts(
        cold=min((cold for cold, _ in timings), key=lambda s: s.ready_ms),
        warm=min((warm for _, warm in timings), key=lambda s: s.ready_ms),
        first=first,
        second=second,
        private_second=private_second,
    )


# -- crypto -------------------------------------------------------------------------------------


def crypto_in_chromium(
    playwright: Playwright, argument: str, scratch: Path, problems: list[str]
) -> dict[str, Any]:
    """crypto_kernel.run(argument) in Pyodide in a Chromium worker, under the production CSP.

    Playwright stays attached: the kernel makes no request while it measures.
    """
    site = StaticSite(
        {"/dist/": DIST_DIR}, {"/index.html": CRYPTO_HTML, "/page.mjs": CRYPTO_PAGE_MJS}
    )
    with (
        contextlib.contextmanager(serve_in_thread)(site),
        chromium(playwright, scratch / "crypto", problems) as browser,
    ):
        page = browser.new_page()
        page.goto(site.base_url + "index.html")
        page.wait_for_function("() => typeof window.benchRun === 'function'")
        request = {
            "files": {KERNEL.name: KERNEL.read_text(encoding="utf-8")},
            "module": KERNEL.stem,
            "function": "run",
            "argument": argument,
        }
        answer = page.evaluate("(request) => window.benchRun(request)", request)
    if not answer["ok"]:
        raise RuntimeError(f"the kernel failed in Chromium: {answer['error']}")
    if answer.get("violations"):
        raise RuntimeError(f"CSP violations in the worker: {answer['violations']}")
    result: dict[str, Any] = json.loads(answer["value"])
    return result


# -- uploads ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """One upload of the folder from the page."""

    seconds: float
    files: int
    bytes: int
    long_tasks: int
    longest_task_ms: float

    @property
    def mb_per_second(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Encrypted:
    """The app's upload: the scan before Upload is enabled, then the upload itself."""

    scan_seconds: float
    scan_longest_task_ms: float
    upload: Upload


@dataclass(frozen=True)
class Folder:
    """The folder both uploads send."""

    path: Path
    files: int
    bytes: int


def _long_tasks(page: Page, start: float, end: float) -> tuple[int, float]:
    """How many long tasks began in ``[start, end]`` (page clock, ms), and the longest."""
    page.wait_for_timeout(LONG_TASK_SETTLE_MS)
    marks = page.evaluate("() => window.__bench")
    if not marks["observing"]:
        raise RuntimeError("this Chromium does not report long tasks")
    inside = [duration for begun, duration in marks["longtasks"] if start <= begun <= end]
    return len(inside), max(inside, default=0.0)


class AppTab:
    """The app, signed in, in one tab of a Chromium that Playwright leaves during uploads."""

    def __init__(self, browser: Chromium, server: Server, account: Account) -> None:
        self._browser = browser
        self._server = server
        self._watcher = Watcher(server, account)
        self.page = browser.new_page()
        self.page.goto(server.base_url + "/")
        _ready(self.page)
        self._sign_in(account.address)

    def close(self) -> None:
        self._watcher.close()

    def _sign_in(self, address: str) -> None:
        """Log in through the form; a fresh account then creates its recovery key."""
        page = self.page
        page.get_by_label("Email").fill(address)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in", exact=True).click()
        generate = page.get_by_test_id("recovery-generate-dialog")
        generate.get_by_role("button", name="Generate Key").click()
        key = page.get_by_test_id("recovery-key-dialog")
        with page.expect_download():
            key.get_by_role("button", name="Download key file").click()
        key.get_by_label("I have stored my recovery key somewhere private").check()
        key.get_by_role("button", name="Done").click()
        expect(page.get_by_test_id("search-status")).to_have_text(re.compile(r"studies"))

    def _unattended(self, done: Callable[[StatsView], bool]) -> None:
        """Leave the tab until the server's side says ``done``, then attach again."""
        self._browser.leave()
        self._watcher.wait(done)
        self.page = self._browser.page(self._server.base_url)

    def encrypted_upload(self, folder: Folder) -> Encrypted:
        """The upload panel: choose the folder, wait for the scan, then Upload until Finished."""
        page = self.page
        page.get_by_role("button", name="Upload Study").click()
        panel = page.get_by_test_id("upload-panel")
        panel.get_by_test_id("folder-input").set_input_files(folder.path)
        found = panel.get_by_test_id("found")
        # The scan of a large folder on a slow machine outlasts expect's default 5 s.
        expect(found).to_have_text(re.compile(r"^Found \d+ files"), timeout=PAGE_TIMEOUT_MS)
        if found.inner_text() != f"Found {folder.files} files":
            raise RuntimeError(f"the app scanned {found.inner_text()!r}, not {folder.files} files")
        before = self._watcher.stats()
        panel.get_by_role("button", name="Upload", exact=True).click()
        self._unattended(lambda stats: stats.studies > before.studies)
        page = self.page
        panel = page.get_by_test_id("upload-panel")
        page.wait_for_function(
            "() => document.querySelector('[data-testid=upload-finished]')"
            " || document.querySelector('[data-testid=upload-message].error')"
        )
        if not panel.get_by_test_id("upload-finished").is_visible():
            message = panel.get_by_test_id("upload-message").inner_text()
            raise RuntimeError(f"the app's upload failed: {message}")
        summary = panel.locator(".finished .hint").inner_text()
        uploaded = re.search(r"(\d+) files uploaded", summary)
        if uploaded is None or int(uploaded.group(1)) != folder.files or "already" in summary:
            raise RuntimeError(f"the app did not upload every file afresh: {summary!r}")
        marks = page.evaluate("() => window.__bench")
        scan, upload = marks["scan"], marks["upload"]
        count, longest = _long_tasks(page, upload["start"], upload["end"])
        _, scan_longest = _long_tasks(page, scan["start"], scan["end"])
        panel.get_by_role("button", name="Close").click()
        seconds = (upload["end"] - upload["start"]) / 1000
        return Encrypted(
            scan_seconds=(scan["end"] - scan["start"]) / 1000,
            scan_longest_task_ms=scan_longest,
            upload=Upload(seconds, folder.files, folder.bytes, count, longest),
        )

    def plain_upload(self, folder: Folder) -> Upload:
        """The same files' bytes as blobs, unencrypted, from the same tab and session."""
        page = self.page
        page.evaluate(
            """() => {
              document.getElementById("bench-plain")?.remove();
              const input = document.createElement("input");
              Object.assign(input, { type: "file", id: "bench-plain", hidden: true });
              input.multiple = input.webkitdirectory = true;
              document.body.append(input);
            }"""
        )
        page.set_input_files("#bench-plain", folder.path)
        before = self._watcher.stats()
        page.evaluate(
            PLAIN_START_JS,
            {
                "inputId": "bench-plain",
                "jobs": JOBS,
                "batchItemBytes": BATCH_ITEM_BYTES,
                "batchItems": BATCH_ITEMS,
                "partBytes": PART_BYTES,
            },
        )
        self._unattended(lambda stats: stats.used_bytes >= before.used_bytes + folder.bytes)
        page = self.page
        page.wait_for_function("() => window.__plainResult !== undefined")
        done = page.evaluate("() => window.__plainResult")
        if "error" in done:
            raise RuntimeError(f"the plain upload failed: {done['error']}")
        expected = (folder.files, folder.bytes, folder.files)
        if (done["files"], done["bytes"], done["stored"]) != expected:
            raise RuntimeError(f"the plain upload sent {done}, not {folder}")
        count, longest = _long_tasks(page, done["start"], done["end"])
        seconds = (done["end"] - done["start"]) / 1000
        return Upload(seconds, folder.files, folder.bytes, count, longest)


def uploads(
    playwright: Playwright,
    server: Server,
    folder: Folder,
    accounts: Sequence[Account],
    scratch: Path,
    problems: list[str],
) -> tuple[list[Encrypted], list[Upload]]:
    """A round per account, each in a new Chromium: both uploads, in alternating order.

    A fresh account per round means the encrypted upload never finds its study stored already.
    """
    encrypted: list[Encrypted] = []
    plain: list[Upload] = []
    for round_, account in enumerate(accounts):
        with chromium(playwright, scratch / f"upload-{round_}", problems) as browser:
            tab = AppTab(browser, server, account)
            try:
                # Alternating which goes first spreads any drift (server caches, the tab's
                # heap) over both.
                if round_ % 2 == 0:
                    encrypted.append(tab.encrypted_upload(folder))
                    plain.append(tab.plain_upload(folder))
                else:
                    plain.append(tab.plain_upload(folder))
                    encrypted.append(tab.encrypted_upload(folder))
            finally:
                tab.close()
        mine, theirs = encrypted[-1], plain[-1]
        print(
            f"upload round {round_ + 1}: encrypted {mine.upload.seconds:.2f} s "
            f"(scan before it {mine.scan_seconds:.2f} s, longest task "
            f"{mine.upload.longest_task_ms:.0f} ms), plain {theirs.seconds:.2f} s "
            f"(longest task {theirs.longest_task_ms:.0f} ms)"
        )
    return encrypted, plain


# -- report -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One line of the table: a figure, its baseline and the ratio between them."""

    figure: str
    value: str
    baseline: str = ""
    baseline_value: str = ""
    ratio: str = ""
    target: str = ""


def _verdict(met: bool, bar: str) -> str:
    return f"{bar}: {'met' if met else 'MISSED'}"


def table(rows: Sequence[Row]) -> str:
    header = Row("figure", "value", "baseline", "value", "ratio", "target")
    cells = [
        (r.figure, r.value, r.baseline, r.baseline_value, r.ratio, r.target)
        for r in (header, *rows)
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(6)]
    lines = []
    for figure, value, baseline, baseline_value, ratio, target in cells:
        lines.append(
            f"{figure:<{widths[0]}}  {value:>{widths[1]}}  {baseline:<{widths[2]}}  "
            f"{baseline_value:>{widths[3]}}  {ratio:>{widths[4]}}  {target}".rstrip()
        )
    return "\n".join(lines)


def _mb(count: int) -> str:
    return f"{count / 1e6:.2f}"


def report(
    starts: Starts,
    native: dict[str, Any],
    wasm: dict[str, Any],
    encrypted: Sequence[Encrypted],
    plain: Sequence[Upload],
) -> list[Row]:
    cold, warm = starts.cold, starts.warm
    rows = [
        Row(
            "cold start: navigation to runtime ready (ms)",
            f"{cold.ready_ms:.0f}",
            "warm: 2nd visit, same profile (ms)",
            f"{warm.ready_ms:.0f}",
            f"{cold.ready_ms / warm.ready_ms:.2f}",
        ),
        Row(
            "cold start: worker boot, runtimeMs (ms)",
            f"{cold.runtime_ms:.0f}",
            "warm: runtimeMs (ms)",
            f"{warm.runtime_ms:.0f}",
            f"{cold.runtime_ms / warm.runtime_ms:.2f}",
        ),
        Row(
            "cold start: sent over the network (MB)",
            _mb(starts.first.sent_bytes),
            "warm: sent over the network (MB)",
            _mb(starts.second.sent_bytes),
        ),
        Row(
            "cold start: sent over the network (MB)",
            _mb(starts.first.sent_bytes),
            "private window, 2nd visit (MB)",
            _mb(starts.private_second.sent_bytes),
        ),
    ]
    for key, label in (("ours_encrypt_mbps", "seal"), ("ours_decrypt_mbps", "open")):
        rows.append(
            Row(
                f"stream {label} in Chromium, Pyodide (MB/s)",
                f"{wasm[key]:.0f}",
                f"CPython, {native['backend']}, same data (MB/s)",
                f"{native[key]:.0f}",
                f"{wasm[key] / native[key]:.2f}",
            )
        )
    best = min((e.upload for e in encrypted), key=lambda u: u.seconds)
    baseline = min(plain, key=lambda u: u.seconds)
    ratio = baseline.seconds / best.seconds
    longest = max(e.upload.longest_task_ms for e in encrypted)
    rows += [
        Row(
            "encrypted folder upload, app (s)",
            f"{best.seconds:.2f}",
            "plain blobs from the same tab (s)",
            f"{baseline.seconds:.2f}",
        ),
        Row(
            "encrypted folder upload, app (MB/s)",
            f"{best.mb_per_second:.1f}",
            "plain blobs from the same tab (MB/s)",
            f"{baseline.mb_per_second:.1f}",
            f"{ratio:.2f}",
            _verdict(ratio >= UPLOAD_RATIO_BAR, f">= {UPLOAD_RATIO_BAR}"),
        ),
        Row(
            "longest main-thread task, upload (ms)",
            f"{longest:.0f}",
            "during the plain upload (ms)",
            f"{max(u.longest_task_ms for u in plain):.0f}",
            "",
            _verdict(longest < LONG_TASK_BAR_MS, f"< {LONG_TASK_BAR_MS:.0f}"),
        ),
        Row(
            "main-thread tasks over 50 ms, upload",
            str(max(e.upload.long_tasks for e in encrypted)),
            "during the plain upload",
            str(max(u.long_tasks for u in plain)),
        ),
        Row("folder scan before Upload (s)", f"{min(e.scan_seconds for e in encrypted):.2f}"),
        Row(
            "longest main-thread task, scan (ms)",
            f"{max(e.scan_longest_task_ms for e in encrypted):.0f}",
        ),
    ]
    return rows


def bench(args: argparse.Namespace, scratch: Path) -> None:
    if not (APP_DIR / "index.html").is_file() or not (DIST_DIR / "manifest.json").is_file():
        raise SystemExit("client/web/dist or wasm/dist is missing: run `just web` first")
    started = time.perf_counter()
    paths = synthetic.make_ct_series(scratch / "data" / "ct", slices=args.slices)
    folder = Folder(scratch / "data" / "ct", len(paths), sum(p.stat().st_size for p in paths))
    print(
        f"data set: {folder.files} CT slices, {folder.bytes / 1e6:.1f} MB, "
        f"made in {time.perf_counter() - started:.1f} s"
    )
    argument = json.dumps({"megabytes": args.megabytes, "repeat": args.rounds, "argon2_runs": 1})
    native: dict[str, Any] = json.loads(crypto_kernel.run(argument))
    problems: list[str] = []
    with running_server(scratch) as server:
        accounts = [sign_up(server, f"bench-browser-{n}@example.org") for n in range(args.rounds)]
        try:
            with sync_playwright() as playwright:
                wasm = crypto_in_chromium(playwright, argument, scratch, problems)
                print(
                    f"stream seal: {wasm['ours_encrypt_mbps']:.0f} MB/s in Chromium, "
                    f"{native['ours_encrypt_mbps']:.0f} MB/s on CPython"
                )
                starts = start_up(playwright, server, args.rounds, scratch, problems)
                encrypted, plain = uploads(playwright, server, folder, accounts, scratch, problems)
        except BaseException:
            _print_problems(problems)
            tail = server.log.read_text(errors="replace").splitlines()[-30:]
            print("the server's log ends with:", *tail, sep="\n  ")
            raise
    print()
    print(
        f"{folder.files} files, {folder.bytes / 1e6:.1f} MB; stream figures on "
        f"{args.megabytes} MiB; best of {args.rounds} (longest tasks: worst of {args.rounds})"
    )
    print(table(report(starts, native, wasm, encrypted, plain)))
    print(
        "ratio: cold/warm for the start rows, Chromium/CPython for the stream rows, "
        "encrypted/plain throughput for the upload"
    )
    _print_problems(problems)


def _print_problems(problems: Sequence[str]) -> None:
    if problems:
        print()
        print("the tabs reported:")
        for problem in dict.fromkeys(problems):
            print(f"  {problem}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="best of N (default 3)")
    parser.add_argument(
        "--slices", type=int, default=SLICES, help="CT slices to upload, ~0.5 MB each"
    )
    parser.add_argument(
        "--megabytes", type=int, default=MEGABYTES, help="MiB for the stream figures"
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.slices < 1 or args.megabytes < 1:
        parser.error("--rounds, --slices and --megabytes take positive numbers")
    with tempfile.TemporaryDirectory(prefix="securepacs-browser-bench-") as scratch:
        bench(args, Path(scratch))


if __name__ == "__main__":
    main()

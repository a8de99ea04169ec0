"""Browser benchmark: the web app in Chromium, each figure beside its baseline.

Run from the repository root after ``just web``: ``.venv/bin/python bench/browser.py
[--rounds N] [--slices N] [--megabytes N]``. It starts a real ``securepacs serve`` (SQLite and
the local blob store in a temporary folder) and drives the real app with Playwright on Debian's
Chromium (``/usr/bin/chromium``; Playwright never downloads a browser here). Figures:

- *start*: a first visit in a fresh browser context (empty cache) against a second visit in
  the same context (the runtime under ``/dist/@<digest>/`` is immutable, so it comes from the
  cache): navigation start to the worker's ready signal, the worker's own boot time
  (``document.body.dataset.runtimeMs``) and the bytes that crossed the network;
- *crypto*: bench/crypto_kernel.py (the SecurePACS stream seal and open on ``--megabytes`` of
  data) inside Pyodide in a Chromium worker, against the same kernel on CPython with PyNaCl in
  this process. The Chromium page is served by wasm/serve.py with the production CSP;
- *upload*: a synthetic CT folder (bench/synthetic.py) uploaded through the app's upload panel
  (click on Upload to "Finished": read, seal, send, commit in the worker), against the same
  files sent unencrypted from the same page, to the same server and account, as blobs through
  the blob API, with the client's batching and the client's 4 requests in flight. The folder
  scan that runs before Upload is enabled is reported on its own line. Every round signs up a
  fresh account, so nothing is deduplicated;
- *main thread*: the longest task of the page's main thread (Long Tasks API, tasks over 50 ms)
  while the encrypted upload runs, and while the plain one runs.

Every figure is the best of ``--rounds`` rounds, except the longest task, which is the worst
seen. Nothing is asserted: the table shows each target and whether this run met it. Figures
are wall-clock: run on an idle machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email.parser
import email.policy
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import crypto_kernel
import httpx
import synthetic
from playwright.sync_api import expect, sync_playwright

from securepacs.client.accounts import AccountFlows, token_from_link
from securepacs.client.httpx_transport import HttpxTransport
from securepacs.client.upload import BATCH_ITEM_BYTES, BATCH_ITEMS, PART_BYTES, UploadOptions

ROOT: Final = Path(__file__).resolve().parents[1]
# wasm/serve.py is a script beside the runtime build, not a package.
sys.path.insert(0, str(ROOT / "wasm"))
from serve import StaticSite, serve_in_thread  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from playwright.sync_api import Browser, BrowserContext, Page, Playwright

CHROMIUM: Final = "/usr/bin/chromium"
# Debian's Chromium in a container needs these; they match tests/pyodide/browser/chromium.mjs.
CHROMIUM_FLAGS: Final = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
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
UPLOAD_TIMEOUT_MS: Final = 900_000
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
    """A running ``securepacs serve``: where it answers and where it keeps its data."""

    base_url: str
    data_dir: Path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _server_command() -> list[str]:
    script = Path(sys.executable).with_name("securepacs")
    if script.is_file():
        return [str(script), "serve"]
    return [sys.executable, "-m", "securepacs.server", "serve"]


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
        yield Server(base_url, data_dir)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(15)


def _outbox_token(outbox: Path, address: str) -> str:
    """The confirmation token mailed to ``address`` (the link's part after '#')."""
    parser = email.parser.BytesParser(policy=email.policy.default)
    for path in sorted(outbox.glob("*.eml"), reverse=True):
        message = parser.parsebytes(path.read_bytes())
        if str(message["To"]).strip().lower() != address:
            continue
        body = message.get_body(preferencelist=("plain",))
        text = str(body.get_content()) if body is not None else ""
        links = [word for word in text.split() if word.startswith("http") and "#" in word]
        if links:
            return token_from_link(links[-1])
    raise RuntimeError("no confirmation mail in the outbox")


async def _sign_up(server: Server, address: str) -> None:
    async with HttpxTransport(server.base_url) as transport:
        flows = AccountFlows(transport)
        await flows.register(address, PASSWORD)
        await flows.confirm(_outbox_token(server.data_dir / "outbox", address))


def sign_up(server: Server, address: str) -> None:
    """Register and confirm an account through the API, as the CLI does."""
    asyncio.run(_sign_up(server, address))


# -- figures ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    """One visit of the app, up to the runtime's ready signal."""

    ready_ms: float
    runtime_ms: float
    network_bytes: int
    resource_bytes: int


@dataclass(frozen=True)
class Starts:
    """The best visit of each kind."""

    cold: Start
    warm: Start
    private: Start


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


def _long_tasks(page: Page, start: float, end: float) -> tuple[int, float]:
    """How many long tasks began in ``[start, end]`` (page clock, ms), and the longest."""
    page.wait_for_timeout(LONG_TASK_SETTLE_MS)
    marks = page.evaluate("() => window.__bench")
    if not marks["observing"]:
        raise RuntimeError("this Chromium does not report long tasks")
    inside = [duration for begun, duration in marks["longtasks"] if start <= begun <= end]
    return len(inside), max(inside, default=0.0)


def _watch(page: Page, problems: list[str]) -> None:
    """Collect what goes wrong on the page: uncaught errors, console errors, HTTP errors."""
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"console.{message.type}: {message.text}")
            # Failed loads are reported with their address by the response handler below.
            if message.type == "error" and not message.text.startswith("Failed to load resource")
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


def _expected_refusal(status: int, url: str) -> bool:
    # On load the app asks who is signed in; signed out, the answer is a 401 by design.
    return status == 401 and url.endswith("/api/v1/me/")


def visit(context: BrowserContext, base_url: str, problems: list[str]) -> tuple[Page, Start]:
    """Open the app in a new page of ``context`` and wait for the runtime's ready signal."""
    page = context.new_page()
    _watch(page, problems)
    page.goto(base_url + "/")
    page.wait_for_function(
        "() => window.__bench?.ready != null", timeout=PAGE_TIMEOUT_MS, polling=100
    )
    expect(page.get_by_role("button", name="Log in", exact=True)).to_be_visible()
    marks = page.evaluate("() => window.__bench")
    runtime_ms = float(page.evaluate("() => Number(document.body.dataset.runtimeMs)"))
    sent, body = page.evaluate(RESOURCE_BYTES_JS)
    for worker in page.workers:
        worker_sent, worker_body = worker.evaluate(RESOURCE_BYTES_JS)
        sent, body = sent + worker_sent, body + worker_body
    return page, Start(float(marks["ready"]), runtime_ms, int(sent), int(body))


def _two_visits(context: BrowserContext, base_url: str, problems: list[str]) -> list[Start]:
    context.add_init_script(MARKS_SCRIPT)
    starts = []
    try:
        for _ in range(2):
            page, start = visit(context, base_url, problems)
            page.close()
            starts.append(start)
    finally:
        context.close()
    return starts


def _start_line(name: str, start: Start) -> str:
    return (
        f"{name} {start.ready_ms:.0f} ms (runtime {start.runtime_ms:.0f} ms, "
        f"{start.network_bytes / 1e6:.2f} of {start.resource_bytes / 1e6:.2f} MB sent)"
    )


def start_up(
    playwright: Playwright,
    browser: Browser,
    base_url: str,
    rounds: int,
    scratch: Path,
    problems: list[str],
) -> Starts:
    """Best cold and warm starts, in a new browser profile and in a private window.

    A profile (``launch_persistent_context``) caches on disk, as a person's browser does. A
    private window (Playwright's ordinary context) caches in memory only, where Chromium keeps
    no entry larger than an eighth of that cache: the runtime's 9.6 MB ``pyodide.asm.wasm``
    is among them, so its second visit is not a fully warm one.
    """
    rows: list[list[Start]] = []
    for round_ in range(rounds):
        profile = playwright.chromium.launch_persistent_context(
            scratch / f"profile-{round_}",
            executable_path=CHROMIUM,
            args=list(CHROMIUM_FLAGS),
            headless=True,
        )
        cold, warm = _two_visits(profile, base_url, problems)
        _, private = _two_visits(browser.new_context(), base_url, problems)
        rows.append([cold, warm, private])
        print(
            f"start round {round_ + 1}: {_start_line('cold', cold)}, {_start_line('warm', warm)}, "
            f"{_start_line('private window, 2nd visit', private)}"
        )
    cold, warm, private = (
        min(column, key=lambda s: s.ready_ms) for column in zip(*rows, strict=True)
    )
    return Starts(cold, warm, private)


def crypto_in_chromium(browser: Browser, argument: str) -> dict[str, Any]:
    """crypto_kernel.run(argument) in Pyodide in a Chromium worker, under the production CSP."""
    site = StaticSite(
        {"/dist/": DIST_DIR}, {"/index.html": CRYPTO_HTML, "/page.mjs": CRYPTO_PAGE_MJS}
    )
    with contextlib.contextmanager(serve_in_thread)(site):
        return _run_kernel(browser, site.base_url, argument)


def _run_kernel(browser: Browser, base_url: str, argument: str) -> dict[str, Any]:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(base_url + "index.html")
        page.wait_for_function("() => typeof window.benchRun === 'function'")
        request = {
            "files": {KERNEL.name: KERNEL.read_text(encoding="utf-8")},
            "module": KERNEL.stem,
            "function": "run",
            "argument": argument,
        }
        answer = page.evaluate("(request) => window.benchRun(request)", request)
    finally:
        context.close()
    if not answer["ok"]:
        raise RuntimeError(f"the kernel failed in Chromium: {answer['error']}")
    if answer.get("violations"):
        raise RuntimeError(f"CSP violations in the worker: {answer['violations']}")
    result: dict[str, Any] = json.loads(answer["value"])
    return result


def sign_in(page: Page, address: str) -> None:
    """Log in through the form; a fresh account then creates its recovery key."""
    page.get_by_label("Email").fill(address)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    generate = page.get_by_test_id("recovery-generate-dialog")
    generate.get_by_role("button", name="Generate Key").click(timeout=PAGE_TIMEOUT_MS)
    key = page.get_by_test_id("recovery-key-dialog")
    with page.expect_download():
        key.get_by_role("button", name="Download key file").click()
    key.get_by_label("I have stored my recovery key somewhere private").check()
    key.get_by_role("button", name="Done").click()
    expect(page.get_by_test_id("search-status")).to_have_text(
        re.compile(r"studies"), timeout=PAGE_TIMEOUT_MS
    )


def encrypted_upload(page: Page, folder: Path, files: int, size: int) -> Encrypted:
    """The upload panel: choose the folder, wait for the scan, then Upload until Finished."""
    page.get_by_role("button", name="Upload Study").click()
    panel = page.get_by_test_id("upload-panel")
    panel.get_by_test_id("folder-input").set_input_files(folder)
    found = panel.get_by_test_id("found")
    expect(found).to_have_text(re.compile(r"^Found \d+ files"), timeout=PAGE_TIMEOUT_MS)
    if found.inner_text() != f"Found {files} files":
        raise RuntimeError(f"the app scanned {found.inner_text()!r}, not {files} files")
    panel.get_by_role("button", name="Upload", exact=True).click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=upload-finished]')"
        " || document.querySelector('[data-testid=upload-message].error')",
        timeout=UPLOAD_TIMEOUT_MS,
        polling=250,
    )
    if not panel.get_by_test_id("upload-finished").is_visible():
        message = panel.get_by_test_id("upload-message").inner_text()
        raise RuntimeError(f"the app's upload failed: {message}")
    summary = panel.locator(".finished .hint").inner_text()
    uploaded = re.search(r"(\d+) files uploaded", summary)
    if uploaded is None or int(uploaded.group(1)) != files or "already stored" in summary:
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
        upload=Upload(seconds, files, size, count, longest),
    )


def plain_upload(page: Page, folder: Path, files: int, size: int) -> Upload:
    """The same files' bytes as blobs, unencrypted, from the same page and session."""
    page.evaluate(
        """() => {
          document.getElementById("bench-plain")?.remove();
          const input = document.createElement("input");
          Object.assign(input, { type: "file", id: "bench-plain", hidden: true, multiple: true });
          input.webkitdirectory = true;
          document.body.append(input);
        }"""
    )
    page.set_input_files("#bench-plain", folder)
    done = page.evaluate(
        PLAIN_UPLOAD_JS,
        {
            "inputId": "bench-plain",
            "jobs": JOBS,
            "batchItemBytes": BATCH_ITEM_BYTES,
            "batchItems": BATCH_ITEMS,
            "partBytes": PART_BYTES,
        },
    )
    if (done["files"], done["bytes"], done["stored"]) != (files, size, files):
        raise RuntimeError(f"the plain upload sent {done}, not {files} files of {size} bytes")
    count, longest = _long_tasks(page, done["start"], done["end"])
    return Upload((done["end"] - done["start"]) / 1000, files, size, count, longest)


def uploads(
    browser: Browser, server: Server, folder: Path, addresses: Sequence[str], problems: list[str]
) -> tuple[list[Encrypted], list[Upload]]:
    """A round per account, each in a new browser context: both uploads, in alternating order.

    A fresh account per round means the encrypted upload never finds its study stored already.
    """
    paths = [path for path in folder.rglob("*") if path.is_file()]
    files, size = len(paths), sum(path.stat().st_size for path in paths)
    encrypted: list[Encrypted] = []
    plain: list[Upload] = []
    for round_, address in enumerate(addresses):
        context = browser.new_context(accept_downloads=True)
        context.set_default_timeout(PAGE_TIMEOUT_MS)
        context.add_init_script(MARKS_SCRIPT)
        try:
            page, _ = visit(context, server.base_url, problems)
            sign_in(page, address)
            # Alternating which goes first spreads any drift (server caches, page heap) evenly.
            if round_ % 2 == 0:
                encrypted.append(encrypted_upload(page, folder, files, size))
                plain.append(plain_upload(page, folder, files, size))
            else:
                plain.append(plain_upload(page, folder, files, size))
                encrypted.append(encrypted_upload(page, folder, files, size))
        finally:
            context.close()
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
    for line in cells:
        figure, value, baseline, baseline_value, ratio, target = line
        lines.append(
            f"{figure:<{widths[0]}}  {value:>{widths[1]}}  {baseline:<{widths[2]}}  "
            f"{baseline_value:>{widths[3]}}  {ratio:>{widths[4]}}  {target}".rstrip()
        )
    return "\n".join(lines)


def report(
    starts: Starts,
    native: dict[str, Any],
    wasm: dict[str, Any],
    encrypted: Sequence[Encrypted],
    plain: Sequence[Upload],
) -> list[Row]:
    cold, warm, private = starts.cold, starts.warm, starts.private
    best = min((e.upload for e in encrypted), key=lambda u: u.seconds)
    baseline = min(plain, key=lambda u: u.seconds)
    upload_ratio = baseline.seconds / best.seconds
    longest = max(e.upload.longest_task_ms for e in encrypted)
    plain_longest = max(u.longest_task_ms for u in plain)
    scan = min(e.scan_seconds for e in encrypted)
    scan_longest = max(e.scan_longest_task_ms for e in encrypted)
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
            f"{cold.network_bytes / 1e6:.2f}",
            "warm: sent over the network (MB)",
            f"{warm.network_bytes / 1e6:.2f}",
        ),
        Row(
            "cold start: navigation to runtime ready (ms)",
            f"{cold.ready_ms:.0f}",
            "private window, 2nd visit (ms)",
            f"{private.ready_ms:.0f}",
            f"{cold.ready_ms / private.ready_ms:.2f}",
        ),
        Row(
            "cold start: sent over the network (MB)",
            f"{cold.network_bytes / 1e6:.2f}",
            "private window, 2nd visit (MB)",
            f"{private.network_bytes / 1e6:.2f}",
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
    rows += [
        Row(
            "encrypted folder upload, app (s)",
            f"{best.seconds:.2f}",
            "plain blobs from the same page (s)",
            f"{baseline.seconds:.2f}",
        ),
        Row(
            "encrypted folder upload, app (MB/s)",
            f"{best.mb_per_second:.1f}",
            "plain blobs from the same page (MB/s)",
            f"{baseline.mb_per_second:.1f}",
            f"{upload_ratio:.2f}",
            _verdict(upload_ratio >= UPLOAD_RATIO_BAR, f">= {UPLOAD_RATIO_BAR}"),
        ),
        Row(
            "longest main-thread task, upload (ms)",
            f"{longest:.0f}",
            "during the plain upload (ms)",
            f"{plain_longest:.0f}",
            "",
            _verdict(longest < LONG_TASK_BAR_MS, f"< {LONG_TASK_BAR_MS:.0f}"),
        ),
        Row(
            "main-thread tasks over 50 ms, upload",
            str(max(e.upload.long_tasks for e in encrypted)),
            "during the plain upload",
            str(max(u.long_tasks for u in plain)),
        ),
        Row("folder scan before Upload (s)", f"{scan:.2f}"),
        Row("longest main-thread task, scan (ms)", f"{scan_longest:.0f}"),
    ]
    return rows


def bench(args: argparse.Namespace, scratch: Path) -> None:
    if not (APP_DIR / "index.html").is_file() or not (DIST_DIR / "manifest.json").is_file():
        raise SystemExit("client/web/dist or wasm/dist is missing: run `just web` first")
    folder = scratch / "data" / "ct"
    started = time.perf_counter()
    paths = synthetic.make_ct_series(folder, slices=args.slices)
    size = sum(path.stat().st_size for path in paths)
    print(
        f"data set: {len(paths)} CT slices, {size / 1e6:.1f} MB, "
        f"made in {time.perf_counter() - started:.1f} s"
    )
    argument = json.dumps({"megabytes": args.megabytes, "repeat": args.rounds, "argon2_runs": 1})
    native: dict[str, Any] = json.loads(crypto_kernel.run(argument))
    problems: list[str] = []
    with running_server(scratch) as server:
        # Before Playwright starts: its synchronous API keeps an event loop in this thread.
        addresses = [f"bench-browser-{n}@example.org" for n in range(args.rounds)]
        for address in addresses:
            sign_up(server, address)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=list(CHROMIUM_FLAGS), headless=True
            )
            try:
                print(f"Chromium {browser.version}, server {server.base_url}")
                wasm = crypto_in_chromium(browser, argument)
                print(
                    f"stream seal: {wasm['ours_encrypt_mbps']:.0f} MB/s in Chromium, "
                    f"{native['ours_encrypt_mbps']:.0f} MB/s on CPython"
                )
                starts = start_up(
                    playwright, browser, server.base_url, args.rounds, scratch, problems
                )
                encrypted, plain = uploads(browser, server, folder, addresses, problems)
            finally:
                browser.close()
    print()
    print(
        f"{len(paths)} files, {size / 1e6:.1f} MB; stream figures on {args.megabytes} MiB; "
        f"best of {args.rounds} (longest tasks: worst of {args.rounds})"
    )
    print(table(report(starts, native, wasm, encrypted, plain)))
    print(
        "ratio: cold/warm for the start rows, Chromium/CPython for the stream rows, "
        "encrypted/plain throughput for the upload"
    )
    if problems:
        print()
        print("the page reported:")
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

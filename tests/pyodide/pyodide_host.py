"""Run Python functions inside Pyodide (under Node 20 or headless Chromium) from pytest.

Both guests boot the runtime that ``python wasm/build.py`` assembled in ``wasm/dist``, so the
tests exercise exactly what ships to the browser. A call is described the same way for both:
source files to place on the guest's ``sys.path``, a module, a ``str -> str`` function in it and
its argument. The guest's return value comes back as the string the function returned.

Where the runtime is missing the tests skip, unless ``CI`` is set: there a missing runtime means
the pipeline forgot ``python wasm/build.py``, and that must fail rather than pass silently.
"""

from __future__ import annotations

import functools
import json
import mimetypes
import os
import shutil
import subprocess
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Final, NoReturn

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    # What the fixtures hand to tests: (files, module, function, argument) -> returned string.
    GuestCall = Callable[[Mapping[str, str], str, str, str], str]

__all__ = (
    "BROWSER_CSP",
    "DIST_DIR",
    "NODE_TIMEOUT_SECONDS",
    "GuestCallFailed",
    "StaticSite",
    "require_chromium",
    "require_node_runtime",
    "run_in_chromium_at",
    "run_in_pyodide_node",
    "serve_static_site",
)

PROJECT_DIR: Final = Path(__file__).resolve().parents[2]
DIST_DIR: Final = PROJECT_DIR / "wasm" / "dist"
NODE_MODULES_DIR: Final = PROJECT_DIR / "wasm" / "node_modules"
BUILD_SCRIPT: Final = PROJECT_DIR / "wasm" / "build.py"
HARNESS: Final = Path(__file__).resolve().with_name("harness.mjs")
BROWSER_DIR: Final = Path(__file__).resolve().with_name("browser")
DRIVER: Final = BROWSER_DIR / "drive.mjs"
CHROMIUM: Final = Path("/usr/bin/chromium")

# Booting Pyodide takes a few seconds; the margin covers slow CI machines and large vector files.
NODE_TIMEOUT_SECONDS: Final = 300
CHROMIUM_TIMEOUT_SECONDS: Final = 300

# The policy the production server sends: no inline script, no eval, wasm allowed, workers only
# from our own origin. The smoke test proves the runtime boots under it.
BROWSER_CSP: Final = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


class GuestCallFailed(AssertionError):
    """The guest exited with an error; the message carries its stderr (the Python traceback)."""


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


def _unavailable(reason: str) -> NoReturn:
    if _in_ci():
        pytest.fail(f"{reason} (CI is set, so a missing runtime is an error)")
    pytest.skip(reason)


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        _unavailable("node is not on PATH: install Node.js 20 to run the Pyodide tests")
    return node


@functools.cache
def _stale_dist_report() -> str | None:
    # The wheel in wasm/dist is a snapshot of the sources: testing an old one would report on
    # code that is no longer there. The check is stdlib-only and takes a fraction of a second.
    completed = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return None if completed.returncode == 0 else completed.stderr


def require_node_runtime() -> str:
    """Return the path of ``node``; skip (or fail under CI) when the runtime is missing.

    A runtime that is present but older than the sources fails the test in any case.
    """
    if not (DIST_DIR / "manifest.json").is_file():
        _unavailable("wasm/dist is missing: run `python wasm/build.py` to test under Pyodide")
    stale = _stale_dist_report()
    if stale is not None:
        pytest.fail(f"wasm/dist does not match the sources; run `python wasm/build.py`:\n{stale}")
    return _node()


def require_chromium() -> str:
    """Like :func:`require_node_runtime`, and also needs Chromium and playwright-core."""
    node = require_node_runtime()
    if not CHROMIUM.is_file():
        _unavailable(f"{CHROMIUM} is missing: `apt-get install -y chromium`")
    if not (NODE_MODULES_DIR / "playwright-core").is_dir():
        _unavailable("wasm/node_modules/playwright-core is missing: run `python wasm/build.py`")
    return node


def _request(files: Mapping[str, str], module: str, function: str, argument: str) -> bytes:
    request = {"files": dict(files), "module": module, "function": function, "argument": argument}
    return json.dumps(request).encode("utf-8")


def _run_guest(command: list[str], request: bytes, timeout: int, what: str) -> str:
    try:
        completed = subprocess.run(
            command, input=request, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as error:
        stderr = (error.stderr or b"").decode("utf-8", "replace")
        raise GuestCallFailed(f"{what} timed out after {timeout} s\n{stderr}") from None
    if completed.returncode != 0:
        stderr = completed.stderr.decode("utf-8", "replace")
        raise GuestCallFailed(f"{what} exited with status {completed.returncode}:\n{stderr}")
    return completed.stdout.decode("utf-8")


def run_in_pyodide_node(files: Mapping[str, str], module: str, function: str, argument: str) -> str:
    """Call ``module.function(argument)`` inside Pyodide under Node and return its string."""
    node = require_node_runtime()
    return _run_guest(
        [node, str(HARNESS)],
        _request(files, module, function, argument),
        NODE_TIMEOUT_SECONDS,
        "Pyodide under Node",
    )


def run_in_chromium_at(
    base_url: str, files: Mapping[str, str], module: str, function: str, argument: str
) -> str:
    """Call ``module.function(argument)`` in a Pyodide worker of the page served at ``base_url``."""
    node = require_chromium()
    return _run_guest(
        [node, str(DRIVER), base_url, str(CHROMIUM)],
        _request(files, module, function, argument),
        CHROMIUM_TIMEOUT_SECONDS,
        "Pyodide in Chromium",
    )


# --- the static site ------------------------------------------------------------------------


class StaticSite(ThreadingHTTPServer):
    """Serves the test page at ``/`` and ``wasm/dist`` at ``/dist/``, with the production CSP."""

    daemon_threads = True

    def __init__(self, page_dir: Path, dist_dir: Path) -> None:
        self.page_dir = page_dir.resolve()
        self.dist_dir = dist_dir.resolve()
        super().__init__(("127.0.0.1", 0), _StaticHandler)

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/"

    def resolve(self, url_path: str) -> Path | None:
        """The file behind ``url_path``, or None when it is absent or outside the roots."""
        relative = url_path.split("?", 1)[0].split("#", 1)[0].lstrip("/")
        root = self.page_dir
        if relative == "dist" or relative.startswith("dist/"):
            root, relative = self.dist_dir, relative.removeprefix("dist").lstrip("/")
        candidate = (root / (relative or "index.html")).resolve()
        if not candidate.is_relative_to(root) or not candidate.is_file():
            return None
        return candidate


_CONTENT_TYPES: Final = {
    # Browsers refuse module scripts without a JavaScript type, and streaming wasm compilation
    # needs application/wasm; the stdlib table does not know .mjs everywhere.
    ".mjs": "text/javascript",
    ".js": "text/javascript",
    ".wasm": "application/wasm",
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".whl": "application/octet-stream",
    ".zip": "application/zip",
}


class _StaticHandler(BaseHTTPRequestHandler):
    server: StaticSite

    def do_GET(self) -> None:
        path = self.server.resolve(self.path)
        if path is None:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        body = path.read_bytes()
        content_type = _CONTENT_TYPES.get(path.suffix) or (
            mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        )
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", BROWSER_CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        # Request lines would only clutter pytest's captured output.
        del format, args


def serve_static_site() -> Iterator[StaticSite]:
    """Run a :class:`StaticSite` on an ephemeral port of 127.0.0.1 until the generator closes."""
    site = StaticSite(BROWSER_DIR, DIST_DIR)
    thread = threading.Thread(target=site.serve_forever, name="pyodide-static-site", daemon=True)
    thread.start()
    try:
        yield site
    finally:
        site.shutdown()
        site.server_close()
        thread.join(timeout=10)

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
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final, NoReturn

import pytest

# wasm/serve.py is a script beside the build, not a package; its server is the one tests use.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "wasm"))
from serve import CHROMIUM, CSP, StaticSite, serve_in_thread

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

# Booting Pyodide takes a few seconds; the margin covers slow CI machines and large vector files.
NODE_TIMEOUT_SECONDS: Final = 300
CHROMIUM_TIMEOUT_SECONDS: Final = 300

BROWSER_CSP: Final = CSP


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


def serve_static_site() -> Iterator[StaticSite]:
    """The test page at ``/`` and ``wasm/dist`` at ``/dist/`` on an ephemeral port of 127.0.0.1."""
    yield from serve_in_thread(StaticSite({"/": BROWSER_DIR, "/dist/": DIST_DIR}))

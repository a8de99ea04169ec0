"""Fixtures that run Python code inside Pyodide, under Node and in headless Chromium."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# The helper module sits beside this file; pytest's import mode decides whether this folder is on
# sys.path, so make sure it is rather than depend on the mode the project configures.
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import pyodide_host  # noqa: E402 - needs the path set above

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from pyodide_host import GuestCall


@pytest.fixture
def run_in_pyodide_node() -> GuestCall:
    """``run(files, module, function, argument) -> str`` inside Pyodide under Node 20."""
    pyodide_host.require_node_runtime()
    return pyodide_host.run_in_pyodide_node


@pytest.fixture(scope="session")
def static_site() -> Iterator[pyodide_host.StaticSite]:
    """The browser test page and ``wasm/dist`` on 127.0.0.1, served with the production CSP."""
    yield from pyodide_host.serve_static_site()


@pytest.fixture
def run_in_chromium(static_site: pyodide_host.StaticSite) -> GuestCall:
    """``run(files, module, function, argument) -> str`` in a Pyodide worker in Chromium."""
    pyodide_host.require_chromium()
    base_url = static_site.base_url

    def run(files: Mapping[str, str], module: str, function: str, argument: str) -> str:
        return pyodide_host.run_in_chromium_at(base_url, files, module, function, argument)

    return run

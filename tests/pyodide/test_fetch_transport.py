"""The client core over fetch in Pyodide, against a real ``securepacs serve`` process."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest

from tests.conftest import free_port
from tests.live_server import Server, live_server

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pyodide_host import GuestCall

PROBE_PATH: Final = Path(__file__).resolve().with_name("fetch_probe.py")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A running server."""
    yield from live_server(tmp_path)


def test_register_and_errors_over_fetch(run_in_pyodide_node: GuestCall, server: Server) -> None:
    request = {
        "server": server.url,
        "email": "wasm@example.org",
        "password": "a password typed in a browser",
        "closed": f"http://127.0.0.1:{free_port()}",
    }
    files = {"fetch_probe.py": PROBE_PATH.read_text(encoding="utf-8")}
    seen = json.loads(run_in_pyodide_node(files, "fetch_probe", "run", json.dumps(request)))

    assert seen["refused"].startswith(("400 ", "404 ", "410 ", "422 "))
    assert seen["unreachable"].startswith("TransportFailure ")
    assert seen["kdf"]["alg"] == 1, "the KDF parameters the wasm client registered"
    with sqlite3.connect(server.root / "server" / "securepacs.db") as db:
        [(email,)] = db.execute("SELECT email FROM account").fetchall()
    assert email == "wasm@example.org"

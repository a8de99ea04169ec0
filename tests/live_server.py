"""A real ``securepacs serve`` process on SQLite and the local blob store, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final

import httpx
import pytest

from tests.conftest import free_port

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ("CLI", "Server", "live_server")

CLI: Final = str(Path(sys.executable).with_name("securepacs"))


class Server:
    """`securepacs serve` on SQLite and the local blob store, restartable on the same data."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "SECUREPACS_DATA_DIR": str(root / "server"),
            "SECUREPACS_PORT": str(self.port),
            "SECUREPACS_PUBLIC_URL": self.url,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with (self.root / "server.log").open("ab") as log:
            self.process = subprocess.Popen(
                [CLI, "serve"], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        for _ in range(150):
            try:
                if httpx.get(f"{self.url}/ready", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        pytest.fail((self.root / "server.log").read_text())

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=20)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)

    def studies(self) -> int:
        with sqlite3.connect(self.root / "server" / "securepacs.db") as db:
            count: int = db.execute("SELECT count(*) FROM study").fetchone()[0]
        return count


def live_server(root: Path) -> Iterator[Server]:
    """A started server on ``root``, stopped afterwards: ``yield from`` it in a fixture."""
    running = Server(root)
    running.start()
    try:
        yield running
    finally:
        running.stop()

"""The ZK-1 canary's search: everything the server keeps or logs, and how a secret could be spelled.

A canary test runs a flow through the client core, then looks for each secret in the database
(the SQLite file with its write-ahead log, or a pg_dump of PostgreSQL), in every file of the
data folder (blob store, mail outbox) and in every captured log line as the server's formatter
writes it, in every spelling a careless column or log line could use.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from securepacs.server.logging import AllowlistFormatter

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pytest

    from securepacs.server.settings import Settings

__all__ = ("data_folder", "database_dump", "found", "logged", "spellings", "stored")


def spellings(name: str, raw: bytes) -> dict[str, bytes]:
    """``raw`` as bytes, hex, base64 and unpadded base64url, each named after ``name``."""
    return {
        name: raw,
        f"{name}-hex": raw.hex().encode(),
        f"{name}-b64": base64.b64encode(raw),
        f"{name}-b64url": base64.urlsafe_b64encode(raw).rstrip(b"="),
    }


def database_dump(settings: Settings) -> bytes:
    """The whole database: the SQLite file with its write-ahead log, or a pg_dump."""
    if settings.database_url.startswith("postgresql"):
        name = settings.database_url.rsplit("/", 1)[1]
        dump = subprocess.run(
            [shutil.which("pg_dump") or "pg_dump", "-h", "127.0.0.1", "-U", "postgres", name],
            capture_output=True,
            check=True,
        ).stdout
        assert b"CREATE TABLE public.account" in dump
        return dump
    # The database may live outside the data folder; read it with its write-ahead log.
    database = Path(settings.database_url.split(":///", 1)[1])
    assert database.is_file()
    files = [database, *database.parent.glob(database.name + "-*")]
    return b"".join(p.read_bytes() for p in files if p.is_file())


def data_folder(settings: Settings) -> bytes:
    """Every file in the data folder: the blob store, the mail outbox, whatever else is there."""
    return b"".join(p.read_bytes() for p in settings.data_dir.rglob("*") if p.is_file())


def stored(settings: Settings) -> bytes:
    """Every byte the server keeps: the data folder and the database."""
    return data_folder(settings) + database_dump(settings)


def logged(caplog: pytest.LogCaptureFixture) -> bytes:
    """Every captured record as the server's log handler would write it."""
    return "\n".join(AllowlistFormatter().format(r) for r in caplog.records).encode()


def found(needles: Mapping[str, bytes], *places: bytes) -> list[str]:
    """The names of the needles that occur in any of ``places``."""
    return [name for name, needle in needles.items() if any(needle in p for p in places)]

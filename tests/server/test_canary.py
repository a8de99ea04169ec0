"""ZK-1 canary: a password and everything derived from it never reach storage, mail or logs.

A person registers and signs in with a canary password. Afterwards the database (the SQLite file,
or a pg_dump of the PostgreSQL database), the data folder (blobs, outbox) and every log line are
searched for the password and for each derived secret: the stretched root, the key-encryption
key and the authentication key (which the server receives at login but must keep only as an
Argon2 hash).
"""

from __future__ import annotations

import base64
import logging
import shutil
import subprocess
from typing import TYPE_CHECKING

import pytest
from litestar.testing import AsyncTestClient

from securepacs.crypto.kdf import stretch_password
from securepacs.server.app import create_app
from securepacs.server.edge import CSRF_HEADER
from securepacs.server.logging import AllowlistFormatter
from tests.server.conftest import Person, outbox_links

if TYPE_CHECKING:
    from securepacs.server.settings import Settings

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("cheap_kdf")]

CANARY_PASSWORD = "Canary-Passw0rd-7f3c9e"


def _needles(person: Person) -> dict[str, bytes]:
    keys = person.new.password_keys
    root = stretch_password(CANARY_PASSWORD, person.kdf)
    needles = {
        "password": CANARY_PASSWORD.encode(),
        "root": root,
        "kek": keys.kek._material,
        "auth_key": keys.auth_key.to_bytes(),
    }
    # Also every textual spelling a careless log line or JSON column could use.
    for name, raw in list(needles.items()):
        if name != "password":
            needles[f"{name}-hex"] = raw.hex().encode()
            needles[f"{name}-b64"] = base64.b64encode(raw)
    return needles


def _storage(settings: Settings) -> bytes:
    blobs = b"".join(p.read_bytes() for p in settings.data_dir.rglob("*") if p.is_file())
    if settings.database_url.startswith("postgresql"):
        name = settings.database_url.rsplit("/", 1)[1]
        dump = subprocess.run(
            [shutil.which("pg_dump") or "pg_dump", "-h", "127.0.0.1", "-U", "postgres", name],
            capture_output=True,
            check=True,
        ).stdout
        blobs += dump
        assert b"CREATE TABLE public.account" in dump
    return blobs


async def test_canary_password_and_derived_keys_never_stored_mailed_or_logged(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    person = Person("canary@example.org", CANARY_PASSWORD)
    caplog.set_level(logging.DEBUG)
    async with AsyncTestClient(create_app(settings)) as client:
        client.headers[CSRF_HEADER] = "1"
        await client.post("/api/v1/accounts/register", json=person.register_body())
        token = outbox_links(settings)[-1].split("#", 1)[1]
        await client.post("/api/v1/accounts/confirm", json={"token": token})
        login = await client.post(
            "/api/v1/auth/login", json={"email": person.email, "auth_key": person.auth_key}
        )
        assert login.status_code == 200
        await client.post(
            "/api/v1/auth/login",
            json={"email": person.email, "auth_key": base64.b64encode(b"x" * 32).decode()},
        )
        await client.get("/api/v1/me/sessions")
    formatter = AllowlistFormatter()
    logs = "\n".join(formatter.format(record) for record in caplog.records).encode()
    assert b"request" in logs  # the access log ran, so its silence below means something
    stored = _storage(settings)
    assert b"canary@example.org" in stored  # the search does see the database
    for name, needle in _needles(person).items():
        assert needle not in stored, f"{name} found in storage"
        assert needle not in logs, f"{name} found in logs"

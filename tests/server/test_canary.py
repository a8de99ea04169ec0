"""ZK-1 canary: passwords, the recovery key and every key derived from them stay on the client.

A person runs the whole account lifecycle through the client core (the code the CLI and the
browser use) with canary passwords and a canary recovery key: register, confirm, sign in,
create a recovery key, change the password, reset it by mail, recover with the recovery key.
Afterwards the database (the SQLite file, or a pg_dump of PostgreSQL), the data folder (blob
store, mail outbox) and every log line are searched for each secret in every spelling a careless
column or log line could use. The authentication keys, which the server receives, must appear
only as Argon2 hashes.
"""

from __future__ import annotations

import base64
import logging
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from litestar.testing import AsyncTestClient

from securepacs.client.accounts import AccountFlows, RecoveryNeeded
from securepacs.crypto import derive_password_keys, recovery_text
from securepacs.crypto.kdf import new_kdf_params, stretch_password
from securepacs.server.app import create_app
from securepacs.server.edge import CSRF_HEADER
from securepacs.server.logging import AllowlistFormatter
from tests.server.conftest import InProcessTransport, outbox_links

if TYPE_CHECKING:
    from securepacs.crypto import AccountKeys, KdfParams, RecoveryKey
    from securepacs.server.settings import Settings

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("cheap_kdf")]

EMAIL = "canary@example.org"
PASSWORDS = ("Canary-Passw0rd-7f3c9e", "Canary-Second-91d2aa", "Canary-Reset-5b07f1")


def _spellings(name: str, raw: bytes) -> dict[str, bytes]:
    return {
        name: raw,
        f"{name}-hex": raw.hex().encode(),
        f"{name}-b64": base64.b64encode(raw),
        f"{name}-b64url": base64.urlsafe_b64encode(raw).rstrip(b"="),
    }


def _password_needles(password: str, params: KdfParams) -> dict[str, bytes]:
    keys = derive_password_keys(password, params)
    needles = {f"password:{password}": password.encode()}
    needles |= _spellings(f"root:{password}", stretch_password(password, params))
    needles |= _spellings(f"kek:{password}", keys.kek._material)
    needles |= _spellings(f"auth:{password}", keys.auth_key.to_bytes())
    return needles


def _key_needles(keys: AccountKeys, recovery: RecoveryKey) -> dict[str, bytes]:
    needles = _spellings("recovery-key", recovery._material)
    needles["recovery-text"] = recovery_text(recovery).encode()
    needles |= _spellings("x25519-secret", keys._x25519_secret)
    needles |= _spellings("ed25519-secret", keys._ed25519_secret[:32])
    needles |= _spellings("account-key", keys.account_key._material)
    return needles


def _storage(settings: Settings) -> bytes:
    blobs = b"".join(p.read_bytes() for p in settings.data_dir.rglob("*") if p.is_file())
    if settings.database_url.startswith("sqlite"):
        # The database may live outside the data folder; read it with its write-ahead log.
        database = Path(settings.database_url.split(":///", 1)[1])
        files = [database, *database.parent.glob(database.name + "-*")]
        blobs += b"".join(p.read_bytes() for p in files if p.is_file())
        assert database.is_file()
    if settings.database_url.startswith("postgresql"):
        name = settings.database_url.rsplit("/", 1)[1]
        dump = subprocess.run(
            [shutil.which("pg_dump") or "pg_dump", "-h", "127.0.0.1", "-U", "postgres", name],
            capture_output=True,
            check=True,
        ).stdout
        assert b"CREATE TABLE public.account" in dump
        blobs += dump
    return blobs


async def test_canary_secrets_never_stored_mailed_or_logged(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    params: list[KdfParams] = []
    async with AsyncTestClient(create_app(settings)) as client:
        client.headers[CSRF_HEADER] = "1"
        flows = AccountFlows(InProcessTransport(client))
        first = new_kdf_params(opslimit=1, memlimit_kib=8)
        params.append(first)
        await flows.register(EMAIL, PASSWORDS[0], kdf=first)
        await flows.confirm(outbox_links(settings)[-1])
        unlocked = await flows.login(EMAIL, PASSWORDS[0])
        recovery = await flows.create_recovery_key(unlocked, replace=False)
        await flows.change_password(unlocked, PASSWORDS[0], PASSWORDS[1])
        params.append(unlocked.params)
        await flows.forgot_password(EMAIL)
        await flows.reset_password(outbox_links(settings)[-1], PASSWORDS[2])
        with pytest.raises(RecoveryNeeded) as needed:
            await flows.login(EMAIL, PASSWORDS[2])
        params.append(needed.value.params)
        restored = await flows.recover(needed.value, recovery_key=recovery)
        assert restored.keys.public == unlocked.keys.public
    needles = _key_needles(unlocked.keys, recovery)
    for password, kdf in zip(PASSWORDS, params, strict=True):
        needles |= _password_needles(password, kdf)
    logs = "\n".join(AllowlistFormatter().format(r) for r in caplog.records).encode()
    assert b"route=/api/v1/auth/login" in logs  # the access log ran, so silence means something
    stored = _storage(settings)
    assert EMAIL.encode() in stored  # the search sees the database
    assert b"Reset your SecurePACS password" in stored  # ...and the outbox
    found = [n for n, needle in needles.items() if needle in stored or needle in logs]
    assert not found, f"secrets found in storage or logs: {found}"

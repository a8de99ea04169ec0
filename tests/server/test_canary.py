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

import logging
from typing import TYPE_CHECKING

import pytest
from litestar.testing import AsyncTestClient

from securepacs.client.accounts import AccountFlows, RecoveryNeeded
from securepacs.crypto import derive_password_keys, recovery_text
from securepacs.crypto.kdf import new_kdf_params, stretch_password
from securepacs.server.app import create_app
from securepacs.server.edge import CSRF_HEADER
from tests.server.canary import found, logged, spellings, stored
from tests.server.conftest import InProcessTransport, outbox_links

if TYPE_CHECKING:
    from securepacs.crypto import AccountKeys, KdfParams, RecoveryKey
    from securepacs.server.settings import Settings

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("cheap_kdf")]

EMAIL = "canary@example.org"
PASSWORDS = ("Canary-Passw0rd-7f3c9e", "Canary-Second-91d2aa", "Canary-Reset-5b07f1")


def _password_needles(password: str, params: KdfParams) -> dict[str, bytes]:
    keys = derive_password_keys(password, params)
    needles = {f"password:{password}": password.encode()}
    needles |= spellings(f"root:{password}", stretch_password(password, params))
    needles |= spellings(f"kek:{password}", keys.kek._material)
    needles |= spellings(f"auth:{password}", keys.auth_key.to_bytes())
    return needles


def _key_needles(keys: AccountKeys, recovery: RecoveryKey) -> dict[str, bytes]:
    needles = spellings("recovery-key", recovery._material)
    needles["recovery-text"] = recovery_text(recovery).encode()
    needles |= spellings("x25519-secret", keys._x25519_secret)
    needles |= spellings("ed25519-secret", keys._ed25519_secret[:32])
    needles |= spellings("account-key", keys.account_key._material)
    return needles


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
    logs = logged(caplog)
    assert b"route=/api/v1/auth/login" in logs  # the access log ran, so silence means something
    kept = stored(settings)
    assert EMAIL.encode() in kept  # the search sees the database
    assert b"Reset your SecurePACS password" in kept  # ...and the outbox
    leaked = found(needles, kept, logs)
    assert not leaked, f"secrets found in storage or logs: {leaked}"

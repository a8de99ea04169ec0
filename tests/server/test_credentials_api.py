"""Password change, reset and recovery, recovery-key slots, deletion, CSRF and rate limits."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

import pytest

import securepacs.crypto as c
from securepacs.crypto.kdf import new_kdf_params
from securepacs.server.edge import CSRF_HEADER
from tests.server.conftest import Person, b64, outbox_links, sign_in

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.testing import AsyncTestClient

    from securepacs.server.settings import Settings

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("cheap_kdf")]


def _kdf_json(params: c.KdfParams) -> dict[str, Any]:
    return {
        "alg": params.alg,
        "opslimit": params.opslimit,
        "memlimit_kib": params.memlimit_kib,
        "salt": b64(params.salt),
    }


async def test_recovery_keys_add_replace_invalidate_by_key_uid(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    mia = Person("mia@example.org", "pw")
    await sign_in(client, settings, mia)
    first, second = c.new_recovery_key(), c.new_recovery_key()
    added = await client.post(
        "/api/v1/me/recovery-keys", json={"slot": b64(c.seal_slot(mia.new.keys, first))}
    )
    assert added.status_code == 201
    assert added.json()["key_uids"] == [c.format_key_uid(first)]
    both = await client.post(
        "/api/v1/me/recovery-keys", json={"slot": b64(c.seal_slot(mia.new.keys, second))}
    )
    assert sorted(both.json()["key_uids"]) == sorted(
        [c.format_key_uid(first), c.format_key_uid(second)]
    )
    replaced = await client.post(
        "/api/v1/me/recovery-keys",
        json={"slot": b64(c.seal_slot(mia.new.keys, first)), "replace": True},
    )
    assert replaced.json()["key_uids"] == [c.format_key_uid(first)]
    assert (await client.get("/api/v1/me/")).json()["recovery_key_uids"] == [
        c.format_key_uid(first)
    ]
    assert (await client.delete("/api/v1/me/recovery-keys")).status_code == 204
    assert (await client.get("/api/v1/me/recovery-keys")).json() == {"key_uids": []}
    wrong_type = await client.post(
        "/api/v1/me/recovery-keys", json={"slot": b64(mia.new.password_slot)}
    )
    assert wrong_type.status_code == 422


async def test_password_change_rewraps_and_ends_other_sessions(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    ned = Person("ned@example.org", "old password")
    await sign_in(client, settings, ned)
    other_cookie = client.cookies.get("securepacs_session")
    client.cookies.clear()
    await client.post("/api/v1/auth/login", json={"email": ned.email, "auth_key": ned.auth_key})
    params = new_kdf_params(opslimit=1, memlimit_kib=8)
    new_keys, slot = c.change_password(ned.new.keys, "new password", kdf=params)
    body = {
        "current_auth_key": ned.auth_key,
        "kdf": _kdf_json(params),
        "auth_key": b64(new_keys.auth_key.to_bytes()),
        "password_slot": b64(slot),
    }
    wrong = await client.post(
        "/api/v1/me/password", json={**body, "current_auth_key": b64(bytes(32))}
    )
    assert wrong.status_code == 401
    assert (await client.post("/api/v1/me/password", json=body)).status_code == 204
    assert (await client.get("/api/v1/me/")).status_code == 200
    client.cookies.clear()
    client.cookies.set("securepacs_session", other_cookie or "")
    assert (await client.get("/api/v1/me/")).status_code == 401
    client.cookies.clear()
    old = await client.post(
        "/api/v1/auth/login", json={"email": ned.email, "auth_key": ned.auth_key}
    )
    assert old.status_code == 401
    login = await client.post(
        "/api/v1/auth/login",
        json={"email": ned.email, "auth_key": b64(new_keys.auth_key.to_bytes())},
    )
    [stored] = [s for s in login.json()["key_slots"] if s["slot_type"] == 1]
    keys, _ = c.unlock_with_password("new password", base64.b64decode(stored["envelope"]))
    assert keys.public == ned.new.keys.public


async def test_password_reset_then_recovery_key_restores_the_same_keys(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    ola = Person("ola@example.org", "forgotten")
    await sign_in(client, settings, ola)
    recovery = c.new_recovery_key()
    await client.post(
        "/api/v1/me/recovery-keys", json={"slot": b64(c.seal_slot(ola.new.keys, recovery))}
    )
    client.cookies.clear()
    sent = await client.post("/api/v1/auth/password-reset", json={"email": ola.email})
    unknown = await client.post("/api/v1/auth/password-reset", json={"email": "who@example.org"})
    assert sent.status_code == unknown.status_code == 202
    assert sent.json() == unknown.json()
    token = outbox_links(settings)[-1].split("#", 1)[1]
    params = new_kdf_params(opslimit=1, memlimit_kib=8)
    new_password_keys = c.derive_password_keys("brand new", params)
    done = await client.post(
        "/api/v1/auth/password-reset/complete",
        json={
            "token": token,
            "kdf": _kdf_json(params),
            "auth_key": b64(new_password_keys.auth_key.to_bytes()),
        },
    )
    assert done.status_code == 200
    assert "recovery key" in done.json()["status"]
    reused = await client.post(
        "/api/v1/auth/password-reset/complete",
        json={"token": token, "kdf": _kdf_json(params), "auth_key": b64(bytes(32))},
    )
    assert reused.status_code == 404
    login = await client.post(
        "/api/v1/auth/login",
        json={"email": ola.email, "auth_key": b64(new_password_keys.auth_key.to_bytes())},
    )
    view = login.json()
    assert view["needs_recovery"] is True
    slots = [base64.b64decode(s["envelope"]) for s in view["key_slots"]]
    recovered = c.unlock_with_secret(slots, c.parse_key_file(c.recovery_key_file(recovery)))
    assert recovered.public == ola.new.keys.public
    _, new_slot = c.change_password(recovered, "brand new", kdf=params)
    stale = c.change_password(
        recovered, "brand new", kdf=new_kdf_params(opslimit=1, memlimit_kib=8)
    )
    mismatch = await client.put("/api/v1/me/password-slot", json={"password_slot": b64(stale[1])})
    assert mismatch.status_code == 422
    stored = await client.put("/api/v1/me/password-slot", json={"password_slot": b64(new_slot)})
    assert stored.status_code == 204
    again = (await client.get("/api/v1/me/keys")).json()
    assert again["needs_recovery"] is False
    [password_slot] = [s for s in again["key_slots"] if s["slot_type"] == 1]
    keys, _ = c.unlock_with_password("brand new", base64.b64decode(password_slot["envelope"]))
    assert keys.public == ola.new.keys.public


async def test_account_deletion_removes_everything(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    pam = Person("pam@example.org", "pw")
    await sign_in(client, settings, pam)
    refused = await client.post("/api/v1/me/delete", json={"auth_key": b64(bytes(32))})
    assert refused.status_code == 401
    assert (
        await client.post("/api/v1/me/delete", json={"auth_key": pam.auth_key})
    ).status_code == 204
    assert (await client.get("/api/v1/me/")).status_code == 401
    login = await client.post(
        "/api/v1/auth/login", json={"email": pam.email, "auth_key": pam.auth_key}
    )
    assert login.status_code == 401
    # The address is free again.
    fresh = Person("pam@example.org", "pw2")
    await sign_in(client, settings, fresh)


async def test_csrf_writes_without_the_app_header_are_refused(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    quinn = Person("quinn@example.org", "pw")
    await sign_in(client, settings, quinn)
    del client.headers[CSRF_HEADER]
    forged = await client.post("/api/v1/auth/logout")
    assert forged.status_code == 403
    assert forged.json()["code"] == "csrf"
    assert "content-security-policy" in forged.headers
    assert (await client.get("/api/v1/me/")).status_code == 200


async def test_rate_limits_answer_429_with_retry_after(
    client: AsyncTestClient[Litestar],
) -> None:
    body = {"email": "rita@example.org", "auth_key": b64(bytes(32))}
    statuses = [(await client.post("/api/v1/auth/login", json=body)).status_code for _ in range(11)]
    assert statuses[:10] == [401] * 10
    limited = await client.post("/api/v1/auth/login", json=body)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0
    assert limited.json()["code"] == "rate_limited"
    other = await client.post(
        "/api/v1/auth/login", json={"email": "sam@example.org", "auth_key": b64(bytes(32))}
    )
    assert other.status_code == 401

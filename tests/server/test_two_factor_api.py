"""TOTP two-factor: enable with the otpauth secret, sign in with a code or a recovery code."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pyotp
import pytest

from tests.server.conftest import Person, outbox_links

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.testing import AsyncTestClient

    from securepacs.server.settings import Settings

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("cheap_kdf")]


def _code_at(secret: str, offset_steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(int(time.time()) + 30 * offset_steps)


async def _enable(
    client: AsyncTestClient[Litestar], settings: Settings, person: Person
) -> tuple[str, list[str]]:
    await client.post("/api/v1/accounts/register", json=person.register_body())
    token = outbox_links(settings)[-1].split("#", 1)[1]
    await client.post("/api/v1/accounts/confirm", json={"token": token})
    await client.post(
        "/api/v1/auth/login", json={"email": person.email, "auth_key": person.auth_key}
    )
    started = await client.post("/api/v1/me/2fa")
    assert started.status_code == 201
    secret = started.json()["secret"]
    assert started.json()["otpauth_uri"].startswith("otpauth://totp/SecurePACS:")
    bad = await client.post("/api/v1/me/2fa/confirm", json={"code": "000000"})
    assert bad.status_code == 401
    confirmed = await client.post("/api/v1/me/2fa/confirm", json={"code": _code_at(secret)})
    assert confirmed.status_code == 200
    codes: list[str] = confirmed.json()["recovery_codes"]
    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert (await client.get("/api/v1/me/")).json()["two_factor_enabled"] is True
    client.cookies.clear()
    return secret, codes


async def _login(client: AsyncTestClient[Litestar], person: Person, **extra: Any) -> Any:
    return await client.post(
        "/api/v1/auth/login", json={"email": person.email, "auth_key": person.auth_key, **extra}
    )


async def test_two_factor_login_needs_a_code_and_refuses_a_replay(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    tom = Person("tom@example.org", "pw")
    secret, _ = await _enable(client, settings, tom)
    needed = await _login(client, tom)
    assert needed.status_code == 401
    assert needed.json()["code"] == "two_factor_required"
    assert "securepacs_session" not in needed.headers.get("set-cookie", "")
    wrong = await _login(client, tom, totp_code="123456")
    assert wrong.json()["code"] == "two_factor_invalid"
    # The step used to confirm is spent; the next step's code signs in once.
    code = _code_at(secret, 1)
    assert (await _login(client, tom, totp_code=code)).status_code == 200
    client.cookies.clear()
    replay = await _login(client, tom, totp_code=code)
    assert replay.status_code == 401
    assert replay.json()["code"] == "two_factor_invalid"


async def test_two_factor_recovery_codes_are_single_use_and_disable_works(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    uma = Person("uma@example.org", "pw")
    _, codes = await _enable(client, settings, uma)
    assert (await _login(client, uma, recovery_code=codes[0].upper())).status_code == 200
    client.cookies.clear()
    reused = await _login(client, uma, recovery_code=codes[0])
    assert reused.json()["code"] == "two_factor_invalid"
    assert (await _login(client, uma, recovery_code=codes[1])).status_code == 200
    assert (await client.post("/api/v1/me/2fa/disable", json={"code": codes[0]})).status_code == 401
    assert (await client.post("/api/v1/me/2fa/disable", json={"code": codes[2]})).status_code == 204
    client.cookies.clear()
    assert (await _login(client, uma)).status_code == 200
    assert (await client.get("/api/v1/me/")).json()["two_factor_enabled"] is False

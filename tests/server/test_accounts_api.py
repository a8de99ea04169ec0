"""The accounts API end to end over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

import pytest
from litestar.testing import AsyncTestClient

import securepacs.crypto as c
from securepacs.server.app import create_app
from securepacs.server.edge import CSRF_HEADER
from securepacs.server.settings import load_settings
from tests.server.conftest import Person, b64, outbox_links

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from litestar import Litestar

    from securepacs.server.settings import Settings

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("cheap_kdf")]


async def _register_and_confirm(
    client: AsyncTestClient[Litestar], settings: Settings, person: Person
) -> None:
    response = await client.post("/api/v1/accounts/register", json=person.register_body())
    assert response.status_code == 202
    token = outbox_links(settings)[-1].split("#", 1)[1]
    response = await client.post("/api/v1/accounts/confirm", json={"token": token})
    assert response.status_code == 200


async def _login(client: AsyncTestClient[Litestar], person: Person, **extra: Any) -> Any:
    return await client.post(
        "/api/v1/auth/login", json={"email": person.email, "auth_key": person.auth_key, **extra}
    )


async def test_accounts_register_confirm_login_unlocks_the_same_keys(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    alice = Person("Alice@Example.org", "correct horse")
    await _register_and_confirm(client, settings, alice)
    pre = await client.post("/api/v1/auth/prelogin", json={"email": "alice@example.org"})
    kdf = pre.json()["kdf"]
    assert base64.b64decode(kdf["salt"]) == alice.kdf.salt
    response = await _login(client, alice)
    assert response.status_code == 200
    body = response.json()
    assert body["email"] == "alice@example.org"
    assert not body["needs_recovery"]
    [slot] = body["key_slots"]
    keys, _ = c.unlock_with_password("correct horse", base64.b64decode(slot["envelope"]))
    assert keys.public.encoded == base64.b64decode(body["public_keys"])
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain http on 127.0.0.1
    me = await client.get("/api/v1/me/")
    assert me.status_code == 200
    assert me.json()["email_confirmed"] is True
    assert me.json()["features"] == ["advanced_viewer"]


async def test_accounts_duplicate_registration_looks_like_the_first(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    first = await client.post(
        "/api/v1/accounts/register", json=Person("bob@example.org", "one").register_body()
    )
    second = await client.post(
        "/api/v1/accounts/register", json=Person("bob@example.org", "two").register_body()
    )
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    mails = sorted(settings.outbox_dir.glob("*.eml"))
    assert len(mails) == 2
    assert any("already has one" in m.read_text() for m in mails)


async def test_accounts_prelogin_unknown_email_is_stable_and_shaped_like_a_real_one(
    client: AsyncTestClient[Litestar],
) -> None:
    one = await client.post("/api/v1/auth/prelogin", json={"email": "nobody@example.org"})
    two = await client.post("/api/v1/auth/prelogin", json={"email": "NOBODY@example.org "})
    other = await client.post("/api/v1/auth/prelogin", json={"email": "else@example.org"})
    assert one.status_code == 200
    assert one.json() == two.json()
    assert one.json() != other.json()
    kdf = one.json()["kdf"]
    assert (kdf["alg"], kdf["opslimit"], kdf["memlimit_kib"]) == (1, 3, 65536)
    assert len(base64.b64decode(kdf["salt"])) == 16


async def test_accounts_unknown_email_and_wrong_key_give_the_same_answer(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    carol = Person("carol@example.org", "pw")
    await _register_and_confirm(client, settings, carol)
    wrong = await client.post(
        "/api/v1/auth/login", json={"email": carol.email, "auth_key": b64(bytes(32))}
    )
    unknown = await client.post(
        "/api/v1/auth/login", json={"email": "zed@example.org", "auth_key": b64(bytes(32))}
    )
    assert wrong.status_code == unknown.status_code == 401
    strip = {"request_id"}
    assert {k: v for k, v in wrong.json().items() if k not in strip} == {
        k: v for k, v in unknown.json().items() if k not in strip
    }
    assert wrong.headers["content-type"].startswith("application/problem+json")


async def test_accounts_unconfirmed_email_cannot_sign_in(
    client: AsyncTestClient[Litestar],
) -> None:
    dave = Person("dave@example.org", "pw")
    await client.post("/api/v1/accounts/register", json=dave.register_body())
    response = await _login(client, dave)
    assert response.status_code == 403
    assert response.json()["code"] == "email_not_confirmed"
    assert "Resend email confirmation" in response.json()["detail"]


async def test_accounts_resend_confirmation_mails_a_fresh_link(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    erin = Person("erin@example.org", "pw")
    await client.post("/api/v1/accounts/register", json=erin.register_body())
    response = await client.post("/api/v1/accounts/confirm/resend", json={"email": erin.email})
    assert response.status_code == 202
    unknown = await client.post("/api/v1/accounts/confirm/resend", json={"email": "x@example.org"})
    assert unknown.json() == response.json()
    links = outbox_links(settings)
    assert len(links) == 2
    token = links[-1].split("#", 1)[1]
    assert (await client.post("/api/v1/accounts/confirm", json={"token": token})).status_code == 200
    again = await client.post("/api/v1/accounts/confirm", json={"token": token})
    assert again.status_code == 404
    assert "Resend email confirmation" in again.json()["detail"]


async def test_accounts_register_refuses_weak_kdf_outside_the_test_floor(
    client: AsyncTestClient[Litestar],
) -> None:
    frank = Person("frank@example.org", "pw")
    body = frank.register_body()
    from securepacs.crypto.kdf import _Floor

    saved = (_Floor.opslimit, _Floor.memlimit_kib)
    _Floor.opslimit, _Floor.memlimit_kib = 3, 65536
    try:
        response = await client.post("/api/v1/accounts/register", json=body)
    finally:
        _Floor.opslimit, _Floor.memlimit_kib = saved
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_input"


@pytest.mark.parametrize(
    ("field", "damage"),
    [
        # The server checks the self-signature of public keys...
        ("public_keys", lambda raw: raw[:-1] + bytes([raw[-1] ^ 1])),
        # ...and the shape of a slot (it cannot check a slot's tag without the password).
        ("password_slot", lambda raw: raw[:-1]),
    ],
)
async def test_accounts_register_refuses_damaged_envelopes(
    client: AsyncTestClient[Litestar], field: str, damage: Callable[[bytes], bytes]
) -> None:
    body = Person("gina@example.org", "pw").register_body()
    body[field] = b64(damage(base64.b64decode(body[field])))
    response = await client.post("/api/v1/accounts/register", json=body)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_input"


async def test_accounts_register_refuses_a_slot_with_other_parameters(
    client: AsyncTestClient[Litestar],
) -> None:
    body = Person("hank@example.org", "pw").register_body()
    body["kdf"]["salt"] = b64(bytes(16))
    response = await client.post("/api/v1/accounts/register", json=body)
    assert response.status_code == 422


async def test_accounts_malformed_json_is_a_problem_without_echo(
    client: AsyncTestClient[Litestar],
) -> None:
    response = await client.post(
        "/api/v1/auth/login", json={"email": "canary-value-123@example.org", "auth_key": 5}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
    assert "canary-value-123" not in response.text


async def test_sessions_list_revoke_and_logout(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    ivy = Person("ivy@example.org", "pw")
    await _register_and_confirm(client, settings, ivy)
    first = await _login(client, ivy, remember=True)
    assert "Max-Age=" in first.headers["set-cookie"]
    first_cookie = client.cookies.get("securepacs_session")
    client.cookies.clear()
    second = await _login(client, ivy)
    assert "Max-Age" not in second.headers["set-cookie"]
    sessions = (await client.get("/api/v1/me/sessions")).json()
    assert len(sessions) == 2
    assert [s["current"] for s in sessions].count(True) == 1
    other = next(s for s in sessions if not s["current"])
    assert other["remember"] is True
    revoked = await client.delete(f"/api/v1/me/sessions/{other['id']}")
    assert revoked.status_code == 204
    client.cookies.clear()
    client.cookies.set("securepacs_session", first_cookie or "")
    assert (await client.get("/api/v1/me/")).status_code == 401
    client.cookies.clear()
    await _login(client, ivy)
    assert (await client.post("/api/v1/auth/logout")).status_code == 204
    assert (await client.get("/api/v1/me/")).status_code == 401


async def test_sessions_of_another_account_are_not_found(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    jay, kim = Person("jay@example.org", "pw"), Person("kim@example.org", "pw")
    await _register_and_confirm(client, settings, jay)
    await _register_and_confirm(client, settings, kim)
    await _login(client, jay)
    [jay_session] = (await client.get("/api/v1/me/sessions")).json()
    client.cookies.clear()
    await _login(client, kim)
    response = await client.delete(f"/api/v1/me/sessions/{jay_session['id']}")
    assert response.status_code == 404
    me = (await client.get("/api/v1/me/")).json()
    assert me["email"] == "kim@example.org"
    assert len((await client.get("/api/v1/me/sessions")).json()) == 1


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/health"),
        ("GET", "/ready"),
        ("GET", "/api/v1/me/"),
        ("GET", "/no/such/page"),
        ("POST", "/no/such/page"),
        ("DELETE", "/"),
        ("POST", "/api/v1/auth/prelogin"),
        ("GET", "/api/schema/openapi.json"),
    ],
)
async def test_edge_every_response_carries_the_security_headers(
    client: AsyncTestClient[Litestar], method: str, path: str
) -> None:
    response = await client.request(method, path, json={"email": "a@example.org"})
    csp = response.headers["content-security-policy"]
    assert "script-src 'self' 'wasm-unsafe-eval'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval'" not in csp.replace("wasm-unsafe-eval'", "")
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "strict-transport-security" not in response.headers
    assert len(response.headers["x-request-id"]) == 16


async def test_operations_health_ready_and_openapi(client: AsyncTestClient[Litestar]) -> None:
    assert (await client.get("/health")).json() == {"status": "ok"}
    assert (await client.get("/ready")).json() == {"status": "ready"}
    schema = (await client.get("/api/schema/openapi.json")).json()
    assert "/api/v1/auth/login" in schema["paths"]
    assert "/api/v1/accounts/register" in schema["paths"]


async def test_edge_behind_tls_sends_hsts_and_secure_cookies(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "SECUREPACS_DATA_DIR": str(tmp_path / "tls"),
            "SECUREPACS_PUBLIC_URL": "https://pacs.example",
        }
    )
    person = Person("tls@example.org", "pw")
    async with AsyncTestClient(create_app(settings), base_url="https://pacs.example") as client:
        client.headers[CSRF_HEADER] = "1"
        response = await client.post("/api/v1/accounts/register", json=person.register_body())
        assert "max-age=" in response.headers["strict-transport-security"]
        token = outbox_links(settings)[-1].split("#", 1)[1]
        await client.post("/api/v1/accounts/confirm", json={"token": token})
        login = await _login(client, person)
        assert "Secure" in login.headers["set-cookie"]


async def test_accounts_concurrent_registrations_of_one_address_make_one_account(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    import asyncio

    bodies = [Person("race@example.org", f"pw{n}").register_body() for n in range(4)]
    responses = await asyncio.gather(
        *(client.post("/api/v1/accounts/register", json=body) for body in bodies)
    )
    assert {r.status_code for r in responses} == {202}
    confirmations = [link for link in outbox_links(settings) if "/confirm#" in link]
    assert len(confirmations) == 1

"""No endpoint answers another account's data, and none answers without a session.

Routes are taken from the app's OpenAPI document, so a new route is covered the day it lands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.server.conftest import Person, outbox_links

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.testing import AsyncTestClient

    from securepacs.server.settings import Settings

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("cheap_kdf")]

PUBLIC = {
    "/health",
    "/ready",
    "/api/v1/accounts/register",
    "/api/v1/accounts/confirm",
    "/api/v1/accounts/confirm/resend",
    "/api/v1/auth/prelogin",
    "/api/v1/auth/login",
    "/api/v1/auth/password-reset",
    "/api/v1/auth/password-reset/complete",
}
# A link's holder has no session: these answer to the link's access key instead.
LINK_ROUTES = {
    "/api/v1/links/{link_id}/open",
    "/api/v1/links/{link_id}/blobs/read",
    "/api/v1/links/{link_id}/blobs/{blob_id}",
}


# Well-formed values, so that a request reaches authentication instead of path validation.
PLACEHOLDERS = {
    "{session_id}": "x",
    "{blob_id}": "a" * 32,
    "{study_id}": "b" * 32,
    "{share_id}": "c" * 32,
    "{link_id}": "d" * 32,
    "{number}": "0",
}


async def _operations(client: AsyncTestClient[Litestar]) -> list[tuple[str, str]]:
    schema = (await client.get("/api/schema/openapi.json")).json()
    return [
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if method in {"get", "post", "put", "delete", "patch"}
    ]


async def test_authorization_every_private_route_needs_a_session(
    client: AsyncTestClient[Litestar],
) -> None:
    operations = await _operations(client)
    private = [(m, p) for m, p in operations if p not in PUBLIC | LINK_ROUTES]
    assert len(private) >= 12
    for method, path in private:
        for name, value in PLACEHOLDERS.items():
            path = path.replace(name, value)
        response = await client.request(method, path, json={})
        assert response.status_code == 401, (method, path, response.status_code)
        assert response.json()["code"] == "not_authenticated"


async def test_authorization_one_account_never_sees_another(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    people = [Person("vera@example.org", "pw"), Person("walt@example.org", "pw")]
    cookies, sessions = [], []
    for person in people:
        await client.post("/api/v1/accounts/register", json=person.register_body())
        token = outbox_links(settings)[-1].split("#", 1)[1]
        await client.post("/api/v1/accounts/confirm", json={"token": token})
        client.cookies.clear()
        await client.post(
            "/api/v1/auth/login", json={"email": person.email, "auth_key": person.auth_key}
        )
        cookies.append(client.cookies.get("securepacs_session") or "")
        sessions.append((await client.get("/api/v1/me/sessions")).json()[0]["id"])
    client.cookies.clear()
    client.cookies.set("securepacs_session", cookies[1])
    me = (await client.get("/api/v1/me/")).json()
    keys = (await client.get("/api/v1/me/keys")).json()
    assert me["email"] == "walt@example.org"
    assert keys["email"] == "walt@example.org"
    everything = str(me) + str(keys) + str((await client.get("/api/v1/me/sessions")).json())
    assert "vera" not in everything
    assert sessions[0] not in everything
    assert (await client.delete(f"/api/v1/me/sessions/{sessions[0]}")).status_code == 404
    client.cookies.clear()
    client.cookies.set("securepacs_session", cookies[0])
    assert (await client.get("/api/v1/me/")).json()["email"] == "vera@example.org"

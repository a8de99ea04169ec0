"""Schemathesis against the app's own OpenAPI: no request, however odd, gets a 5xx.

A bounded run (a few examples per operation) on SQLite, signed in as a real account so the
authenticated routes are reached too, with the CSRF header every app request carries.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from litestar.testing import TestClient

from securepacs.crypto.kdf import insecure_kdf_floor_for_tests
from securepacs.server.app import create_app
from securepacs.server.db.engine import create_engine
from securepacs.server.db.migrate import upgrade
from securepacs.server.settings import load_settings
from tests.server.conftest import Person, outbox_links

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from litestar import Litestar


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Litestar, str]]:
    """A migrated SQLite app with one confirmed, signed-in account; yields (app, cookie)."""
    data: Path = tmp_path_factory.mktemp("fuzz")
    app_settings = load_settings({"SECUREPACS_DATA_DIR": str(data)})

    async def migrate() -> None:
        engine = create_engine(app_settings.database_url)
        await upgrade(engine)
        await engine.dispose()

    asyncio.run(migrate())
    app = create_app(app_settings)
    with insecure_kdf_floor_for_tests(), TestClient(app) as client:
        client.headers["X-SecurePACS-CSRF"] = "1"
        person = Person("fuzz@example.org", "pw")
        client.post("/api/v1/accounts/register", json=person.register_body())
        token = outbox_links(app_settings)[-1].split("#", 1)[1]
        client.post("/api/v1/accounts/confirm", json={"token": token})
        login = client.post(
            "/api/v1/auth/login", json={"email": person.email, "auth_key": person.auth_key}
        )
        assert login.status_code == 200
        cookie = client.cookies.get("securepacs_session") or ""
    yield app, cookie


def test_api_no_input_gets_a_server_error(fuzzed_app: tuple[Litestar, str]) -> None:
    app, cookie = fuzzed_app
    api = schemathesis.openapi.from_asgi("/api/schema/openapi.json", app)
    headers = {"X-SecurePACS-CSRF": "1", "Cookie": f"securepacs_session={cookie}"}
    checked = 0
    for result in api.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        # Deleting the account or signing out would end the run's session early.
        if operation.path in ("/api/v1/me/delete", "/api/v1/auth/logout"):
            continue

        @given(case=operation.as_strategy())
        @settings(
            max_examples=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        def never_a_server_error(case: Any) -> None:
            response = case.call(headers=headers)
            assert response.status_code < 500, (case.method, case.path, response.status_code)

        never_a_server_error()
        checked += 1
    assert checked >= 20

"""Server fixtures: every test runs on SQLite and on the real PostgreSQL at 127.0.0.1:5432.

PostgreSQL tests use a database of their own, created for the session and dropped after it.
Where PostgreSQL is unreachable they skip, unless CI is set: there it is a failure, because
.ci/run guarantees the server is up.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text

import securepacs.crypto as c
from securepacs.client.transport import TransportResponse
from securepacs.crypto.kdf import insecure_kdf_floor_for_tests, new_kdf_params
from securepacs.server.app import create_app
from securepacs.server.db.engine import create_engine
from securepacs.server.edge import CSRF_HEADER
from securepacs.server.settings import Settings, load_settings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator, Mapping
    from pathlib import Path

    from litestar import Litestar

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


async def _pg(statement: str) -> None:
    connection = await asyncpg.connect(PG_ADMIN, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (its asyncpg SQLAlchemy URL)."""
    name = f"securepacs_test_{secrets.token_hex(4)}"
    try:
        asyncio.run(_pg(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as error:
        reason = f"PostgreSQL at 127.0.0.1:5432 is not reachable ({type(error).__name__})"
        if _in_ci():
            pytest.fail(f"{reason}; .ci/run must start it")
        pytest.skip(reason)
    yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each server test runs once per database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'securepacs.db'}"
    url: str = request.getfixturevalue("pg_database")
    return url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings for an app under test: its own data folder, outbox mail."""
    return load_settings(
        {
            "SECUREPACS_DATA_DIR": str(tmp_path / "data"),
            "SECUREPACS_DATABASE_URL": database_url,
            "SECUREPACS_PUBLIC_URL": "http://127.0.0.1:8000",
        }
    )


async def _truncate(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("TRUNCATE account CASCADE"))
    finally:
        await engine.dispose()


@pytest.fixture
def app(settings: Settings) -> Iterator[Litestar]:
    """The app; PostgreSQL tables are emptied afterwards (SQLite files are per test)."""
    yield create_app(settings)
    if settings.database_url.startswith("postgresql"):
        asyncio.run(_truncate(settings.database_url))


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """An HTTP client bound to the app (lifespan runs: migrations, engine disposal)."""
    async with AsyncTestClient(app, base_url="http://127.0.0.1:8000") as test_client:
        test_client.headers[CSRF_HEADER] = "1"
        yield test_client


@pytest.fixture
def cheap_kdf() -> Iterator[None]:
    """Argon2id at libsodium's minimum, for tests that register many accounts."""
    with insecure_kdf_floor_for_tests():
        yield


def b64(data: bytes) -> str:
    """Standard base64, as the API carries bytes."""
    return base64.b64encode(data).decode("ascii")


class Person:
    """A client-side account: its keys and the register body the server will get."""

    def __init__(self, email: str, password: str, *, cheap: bool = True) -> None:
        self.email = email
        self.password = password
        kdf = new_kdf_params(opslimit=1, memlimit_kib=8) if cheap else new_kdf_params()
        self.new = c.create_account(password, kdf=kdf)
        self.kdf = kdf

    @property
    def auth_key(self) -> str:
        return b64(self.new.password_keys.auth_key.to_bytes())

    def register_body(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "kdf": {
                "alg": self.kdf.alg,
                "opslimit": self.kdf.opslimit,
                "memlimit_kib": self.kdf.memlimit_kib,
                "salt": b64(self.kdf.salt),
            },
            "auth_key": self.auth_key,
            "public_keys": b64(self.new.keys.public.encoded),
            "password_slot": b64(self.new.password_slot),
        }


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio, like the server."""
    return "asyncio"


def outbox_links(settings: Settings) -> list[str]:
    """Every link in the mails written to the outbox, oldest first."""
    links: list[str] = []
    for path in sorted(settings.outbox_dir.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns):
        links += [w for w in path.read_text().split() if w.startswith("http")]
    return links


class InProcessTransport:
    """The client core's Transport over the in-process test client (same bytes as httpx)."""

    def __init__(self, client: AsyncTestClient[Litestar]) -> None:
        self.client = client

    async def request(self, method: str, path: str, body: Any = None) -> TransportResponse:
        import msgspec

        content = None if body is None else msgspec.json.encode(body)
        headers = {"content-type": "application/json"} if content is not None else {}
        response = await self.client.request(method, path, content=content, headers=headers)
        return TransportResponse(
            response.status_code, response.content, response.headers.get("retry-after")
        )

    async def send(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> TransportResponse:
        response = await self.client.request(
            method, path, content=content, headers=dict(headers or {})
        )
        return TransportResponse(
            response.status_code, response.content, response.headers.get("retry-after")
        )


async def sign_in(client: AsyncTestClient[Litestar], settings: Settings, person: Person) -> Any:
    """Register, confirm through the outbox and sign in; returns the login response body."""
    await client.post("/api/v1/accounts/register", json=person.register_body())
    token = outbox_links(settings)[-1].split("#", 1)[1]
    await client.post("/api/v1/accounts/confirm", json={"token": token})
    response = await client.post(
        "/api/v1/auth/login", json={"email": person.email, "auth_key": person.auth_key}
    )
    assert response.status_code == 200
    return response.json()

"""Mail through a real SMTP server (aiosmtpd): the confirmation link in the received mail works."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from litestar.testing import AsyncTestClient

from securepacs.server.app import create_app
from securepacs.server.edge import CSRF_HEADER
from securepacs.server.settings import load_settings
from tests.server.conftest import Person

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import SmtpInbox

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("cheap_kdf")]


async def test_mail_confirmation_over_smtp_confirms_the_account(
    smtp_inbox: SmtpInbox, tmp_path: Path, database_url: str
) -> None:
    inbox, port = smtp_inbox, smtp_inbox.port
    settings = load_settings(
        {
            "SECUREPACS_DATA_DIR": str(tmp_path / "data"),
            "SECUREPACS_DATABASE_URL": database_url,
            "SECUREPACS_SMTP_URL": f"smtp://127.0.0.1:{port}",
        }
    )
    person = Person("lou@example.org", "pw")
    async with AsyncTestClient(create_app(settings)) as client:
        client.headers[CSRF_HEADER] = "1"
        response = await client.post("/api/v1/accounts/register", json=person.register_body())
        assert response.status_code == 202
        [message] = inbox.messages
        assert message["To"] == "lou@example.org"
        assert message["Subject"] == "Confirm your SecurePACS account"
        link = inbox.last_link()
        assert link.startswith("http://127.0.0.1:8000/confirm#")
        token = link.split("#", 1)[1]
        assert (
            await client.post("/api/v1/accounts/confirm", json={"token": token})
        ).status_code == 200
        login = await client.post(
            "/api/v1/auth/login", json={"email": person.email, "auth_key": person.auth_key}
        )
        assert login.status_code == 200
    assert not (settings.outbox_dir).exists()
    if database_url.startswith("postgresql"):
        from tests.server.conftest import _truncate

        await _truncate(database_url)

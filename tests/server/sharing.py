"""People for sharing tests: several signed-in accounts and anonymous visitors on one test app.

Each actor keeps its own session cookie and puts it on the shared test client before each of
its requests, so that one in-process app serves them all, as one server serves many browsers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from securepacs.client.api import ApiClient
from securepacs.client.dicom import scan_folder
from securepacs.client.download import Downloader
from securepacs.client.sharing import Sharing
from securepacs.client.trust import FingerprintMemory
from securepacs.client.upload import Uploader, UploadOptions
from tests.server.conftest import InProcessTransport, Person, outbox_links

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from litestar import Litestar
    from litestar.testing import AsyncTestClient

    from securepacs.client.transport import TransportResponse
    from securepacs.server.settings import Settings

__all__ = ("Actor", "ActorTransport", "upload_study")

COOKIE = "securepacs_session"


class ActorTransport(InProcessTransport):
    """Requests with one actor's session cookie (or none: an anonymous visitor)."""

    def __init__(self, client: AsyncTestClient[Litestar], cookie: str | None) -> None:
        super().__init__(client)
        self.cookie = cookie
        # The requests this actor made, for checks that no secret was sent.
        self.sent: list[tuple[str, str, bytes, dict[str, str]]] = []

    def _wear(self) -> None:
        self.client.cookies.clear()
        if self.cookie:
            self.client.cookies.set(COOKIE, self.cookie)

    async def request(self, method: str, path: str, body: Any = None) -> TransportResponse:
        self._wear()
        import msgspec

        self.sent.append((method, path, b"" if body is None else msgspec.json.encode(body), {}))
        return await super().request(method, path, body)

    async def send(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> TransportResponse:
        self._wear()
        self.sent.append((method, path, content or b"", dict(headers or {})))
        return await super().send(method, path, content=content, headers=headers)


class Actor:
    """A person with an account on the test server, signed in with a session of their own."""

    def __init__(self, client: AsyncTestClient[Litestar], name: str) -> None:
        self.client = client
        self.person = Person(f"{name}@example.org", "pw")
        self.email = self.person.email
        self.transport = ActorTransport(client, None)
        self.api = ApiClient(self.transport)
        self.fingerprints = FingerprintMemory()

    @property
    def keys(self) -> Any:
        return self.person.new.keys

    async def register(self, settings: Settings, *, confirm: bool = True) -> Actor:
        """Register (and by default confirm and sign in)."""
        self.client.cookies.clear()
        await self.client.post("/api/v1/accounts/register", json=self.person.register_body())
        if confirm:
            await self.confirm(settings)
        return self

    async def confirm(self, settings: Settings) -> None:
        """Confirm through the newest mail to this person, then sign in."""
        self.client.cookies.clear()
        token = outbox_links(settings)[-1].split("#", 1)[1]
        await self.client.post("/api/v1/accounts/confirm", json={"token": token})
        response = await self.client.post(
            "/api/v1/auth/login",
            json={"email": self.email, "auth_key": self.person.auth_key},
        )
        assert response.status_code == 200, response.text
        self.transport.cookie = self.client.cookies.get(COOKIE)
        self.client.cookies.clear()

    def sharing(self) -> Sharing:
        """This person's sharing, remembering fingerprints like one device would."""
        return Sharing(self.api, self.keys, self.fingerprints, "https://pacs.example.org")

    def downloader(self, *, download: bool = False) -> Downloader:
        """This person's reader of studies."""
        return Downloader(self.api, self.keys, fingerprints=self.fingerprints, download=download)


async def upload_study(
    actor: Actor,
    folder: Path,
    *,
    files: int = 2,
    patient_name: str = "Canary^Patient",
    description: str = "Original description",
) -> str:
    """Upload a small CT study of ``files`` slices as ``actor``; returns its id."""
    folder.mkdir(parents=True, exist_ok=True)
    dataset = pydicom.dcmread(str(get_testdata_file("CT_small.dcm")))
    dataset.PatientName = patient_name
    dataset.StudyDescription = description
    # A study of its own each time, never an append to an earlier one.
    dataset.StudyInstanceUID = generate_uid()
    base = dataset.SOPInstanceUID
    for number in range(files):
        dataset.SOPInstanceUID = f"{base}.{number + 1}"
        dataset.InstanceNumber = number + 1
        dataset.save_as(folder / f"slice{number}.dcm")
    uploader = Uploader(actor.api, actor.keys, scanner=scan_folder)
    report = await uploader.upload_folder(folder, UploadOptions())
    [outcome] = report.studies
    return outcome.study_id

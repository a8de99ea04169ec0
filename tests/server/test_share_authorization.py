"""The authorization matrix: every study route, for every kind of requester (ZK-5).

Requesters: the owner; a share with each permission; an expired and a revoked share; a
stranger; and, on the link routes, an anonymous link's holder with the right access key, with
none, and with a wrong one. Only the allowed cells pass; a requester without any access gets
404 (the study's existence is not revealed), one with too little access 403.
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import update

from securepacs.client.api import ApiClient, ApiError
from securepacs.client.sharing import parse_link_url
from securepacs.crypto import (
    PERMISSION_ADMIN,
    PERMISSION_DOWNLOAD,
    PERMISSION_EDIT,
    PERMISSION_VIEW,
    StudyKey,
    link_access,
    new_link_id,
    new_link_secret,
    seal_link,
)
from securepacs.server.db.engine import create_engine, session_factory
from securepacs.server.db.models import Share
from tests.server.sharing import Actor, upload_study
from tests.server.test_authorization import _operations

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    from litestar import Litestar
    from litestar.testing import AsyncTestClient

    from securepacs.server.settings import Settings

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("cheap_kdf")]

ROLES = ("owner", "view", "download", "edit", "admin", "expired", "revoked", "stranger")
EVERYONE_WITH_ACCESS = {"owner", "view", "download", "edit", "admin"}
DOWNLOADERS = {"owner", "download", "edit", "admin"}
EDITORS = {"owner", "edit", "admin"}
ADMINS = {"owner", "admin"}
NO_ACCESS = {"expired", "revoked", "stranger"}
# What each account route allows; the keys are also checked against the app's routes below.
ALLOWED = {
    ("GET", "/api/v1/studies/{study_id}"): EVERYONE_WITH_ACCESS,
    ("POST", "/api/v1/blobs/read"): EVERYONE_WITH_ACCESS,
    ("POST", "/api/v1/blobs/read download"): DOWNLOADERS,
    ("GET", "/api/v1/blobs/{blob_id}"): EVERYONE_WITH_ACCESS,
    ("GET", "/api/v1/blobs/{blob_id} download"): DOWNLOADERS,
    ("PUT", "/api/v1/studies/{study_id}"): EDITORS,
    ("GET", "/api/v1/studies/{study_id}/shares"): ADMINS,
    ("POST", "/api/v1/studies/{study_id}/shares"): ADMINS,
    ("PUT", "/api/v1/shares/{share_id}"): ADMINS,
    ("DELETE", "/api/v1/shares/{share_id}"): ADMINS,
    ("POST", "/api/v1/studies/{study_id}/links"): ADMINS,
    ("DELETE", "/api/v1/links/{link_id}"): ADMINS,
    ("DELETE", "/api/v1/studies/{study_id}"): {"owner"},
}
# Routes about one study that are not in the table, and why.
NOT_STUDY_SCOPED = {
    ("POST", "/api/v1/blobs/{blob_id}"),  # reserving my own upload
    ("PUT", "/api/v1/blobs/{blob_id}"),
    ("PUT", "/api/v1/blobs/{blob_id}/parts/{number}"),
    ("POST", "/api/v1/blobs/{blob_id}/complete"),
    ("DELETE", "/api/v1/blobs/{blob_id}"),  # abandoning my own upload: tested in test_blobs
    ("POST", "/api/v1/shares/{share_id}/complete"),  # the pending-share test covers it
}
LINK_ROUTES = {
    ("POST", "/api/v1/links/{link_id}/open"),
    ("POST", "/api/v1/links/{link_id}/blobs/read"),
    ("GET", "/api/v1/links/{link_id}/blobs/{blob_id}"),
}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class World:
    """One study shared every way, and one API client per requester."""

    def __init__(self, client: AsyncTestClient[Litestar], settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.actors: dict[str, Actor] = {}
        self.study_id = ""
        self.blob_ids: list[str] = []
        self.commit_body: dict[str, Any] = {}

    async def build(self, folder: Path) -> None:
        for role in ROLES:
            self.actors[role] = await Actor(self.client, role).register(self.settings)
        owner = self.actors["owner"]
        self.study_id = await upload_study(owner, folder)
        sharing = owner.sharing()
        for role, permission in (
            ("view", PERMISSION_VIEW),
            ("download", PERMISSION_DOWNLOAD),
            ("edit", PERMISSION_EDIT),
            ("admin", PERMISSION_ADMIN),
            ("expired", PERMISSION_ADMIN),
            ("revoked", PERMISSION_ADMIN),
        ):
            made = await sharing.share(self.study_id, self.actors[role].email, permission)
            if role == "revoked":
                await sharing.unshare(made.share.share_id)
            if role == "expired":
                engine = create_engine(self.settings.database_url)
                try:
                    async with session_factory(engine)() as db:
                        past = datetime.now(UTC) - timedelta(minutes=1)
                        await db.execute(
                            update(Share)
                            .where(Share.id == made.share.share_id)
                            .values(expires_at=past)
                        )
                        await db.commit()
                finally:
                    await engine.dispose()
        detail = await owner.api.study(self.study_id)
        self.blob_ids = detail.blob_ids
        summary = detail.summary
        # Committing the current version again is a no-op that still needs Edit.
        self.commit_body = {
            "uid_tag": _b64(summary.uid_tag),
            "wrapped_key": _b64(summary.wrapped_key),
            "metadata": _b64(summary.metadata),
            "manifest": _b64(detail.manifest),
            "manifest_version": summary.manifest_version,
            "blob_ids": detail.blob_ids,
        }

    async def pending_share(self) -> str:
        """A fresh pending share made by the owner (changing it needs no key)."""
        email = f"pending-{secrets.token_hex(4)}@example.org"
        view = await self.actors["owner"].api.create_share(
            self.study_id,
            {
                "share_id": secrets.token_hex(16),
                "recipient_email": email,
                "permission": PERMISSION_VIEW,
            },
        )
        return view.share_id

    def link_body(self, actor: Actor) -> dict[str, Any]:
        """A link signed by ``actor`` (the server checks the signer, and cannot see the key)."""
        link_id = new_link_id()
        access = link_access(new_link_secret(), None)
        envelope = seal_link(
            actor.keys,
            access,
            link_id,
            bytes.fromhex(self.study_id),
            StudyKey(secrets.token_bytes(32)),
            PERMISSION_VIEW,
            0,
        )
        return {
            "link_id": link_id.hex(),
            "permission": PERMISSION_VIEW,
            "envelope": _b64(envelope),
            "verifier": _b64(access.verifier),
        }

    async def link(self) -> str:
        """A fresh link made by the owner."""
        owner = self.actors["owner"]
        return (await owner.api.create_link(self.study_id, self.link_body(owner))).link_id

    def operations(self, actor: Actor) -> dict[tuple[str, str], Callable[[], Awaitable[Any]]]:
        api: ApiClient = actor.api
        sid, blob = self.study_id, self.blob_ids[0]

        async def update_share() -> Any:
            return await api.update_share(await self.pending_share(), {"permission": 2})

        async def delete_share() -> Any:
            return await api.delete_share(await self.pending_share())

        async def revoke_link() -> Any:
            return await api.revoke_link(await self.link())

        async def new_share() -> Any:
            body = {
                "share_id": secrets.token_hex(16),
                "recipient_email": f"new-{secrets.token_hex(4)}@example.org",
                "permission": PERMISSION_VIEW,
            }
            return await api.create_share(sid, body)

        return {
            ("GET", "/api/v1/studies/{study_id}"): lambda: api.study(sid),
            ("POST", "/api/v1/blobs/read"): lambda: api.read_blobs(self.blob_ids),
            ("POST", "/api/v1/blobs/read download"): lambda: api.read_blobs(
                self.blob_ids, download=True
            ),
            ("GET", "/api/v1/blobs/{blob_id}"): lambda: api.get_blob(blob, 0, 10),
            ("GET", "/api/v1/blobs/{blob_id} download"): lambda: api.get_blob(
                blob, 0, 10, download=True
            ),
            ("PUT", "/api/v1/studies/{study_id}"): lambda: api.commit_study(sid, self.commit_body),
            ("GET", "/api/v1/studies/{study_id}/shares"): lambda: api.shares(sid),
            ("POST", "/api/v1/studies/{study_id}/shares"): new_share,
            ("PUT", "/api/v1/shares/{share_id}"): update_share,
            ("DELETE", "/api/v1/shares/{share_id}"): delete_share,
            ("POST", "/api/v1/studies/{study_id}/links"): lambda: api.create_link(
                sid, self.link_body(actor)
            ),
            ("DELETE", "/api/v1/links/{link_id}"): revoke_link,
            ("DELETE", "/api/v1/studies/{study_id}"): lambda: api.delete_study(sid),
        }


async def test_every_study_route_for_every_requester(
    client: AsyncTestClient[Litestar], settings: Settings, tmp_path: Path
) -> None:
    routes = set(await _operations(client))
    scoped = {
        (method, path)
        for method, path in routes
        if any(name in path for name in ("{study_id}", "{blob_id}", "{share_id}", "{link_id}"))
        or path == "/api/v1/blobs/read"
    }
    table = {(method, path.split(" ")[0]) for method, path in ALLOWED}
    assert scoped == table | NOT_STUDY_SCOPED | LINK_ROUTES, "a study route lacks its cells"

    world = World(client, settings)
    await world.build(tmp_path / "study")
    failures: list[str] = []
    # Deleting the study comes last: every other cell needs it.
    ordered = sorted(ALLOWED, key=lambda op: op == ("DELETE", "/api/v1/studies/{study_id}"))
    for operation in ordered:
        allowed = ALLOWED[operation]
        # The owner deletes last of all; everyone else tries first.
        for role in sorted(ROLES, key=lambda r: r == "owner"):
            call = world.operations(world.actors[role])[operation]
            try:
                await call()
            except ApiError as error:
                expected = 404 if role in NO_ACCESS else 403
                if role in allowed or error.status != expected:
                    failures.append(f"{operation} {role}: {error.status} {error.code}")
            else:
                if role not in allowed:
                    failures.append(f"{operation} {role}: allowed")
    assert failures == []
    # And the worklist of studies shared with me lists it exactly for the live shares.
    for role in ROLES:
        if role == "owner":
            continue
        assert await world.actors[role].api.list_studies("shared") == [], role


async def test_link_routes_need_the_links_key_and_follow_its_permission(
    client: AsyncTestClient[Litestar], settings: Settings, tmp_path: Path
) -> None:
    owner = await Actor(client, "owner").register(settings)
    study_id = await upload_study(owner, tmp_path / "study")
    other_id = await upload_study(owner, tmp_path / "other", files=1)
    blob_ids = (await owner.api.study(study_id)).blob_ids
    other_blob = (await owner.api.study(other_id)).blob_ids[0]
    links = {
        "view": await owner.sharing().create_link(study_id, PERMISSION_VIEW),
        "download": await owner.sharing().create_link(study_id, PERMISSION_DOWNLOAD),
    }
    client.cookies.clear()

    def key_header(url: str | None) -> dict[str, str]:
        if url is None:
            return {}
        access = link_access(parse_link_url(url).secret, None)
        return {"x-securepacs-link-key": base64.urlsafe_b64encode(access.access_key).decode()}

    async def status(method: str, path: str, headers: dict[str, str], body: Any = None) -> int:
        response = await client.request(method, path, json=body, headers=headers)
        return response.status_code

    for name, created in links.items():
        link_id = parse_link_url(created.url).link_id.hex()
        base = f"/api/v1/links/{link_id}"
        right, wrong = (
            key_header(created.url),
            key_header(links["view" if name != "view" else "download"].url),
        )
        for headers, ok in ((right, True), ({}, False), (wrong, False)):
            expect = 200 if ok else 404
            assert await status("POST", f"{base}/open", headers, {}) == expect
            assert await status("POST", f"{base}/blobs/read", headers, {"ids": blob_ids}) == expect
            assert await status("GET", f"{base}/blobs/{blob_ids[0]}", headers) == expect
            download = 200 if ok and name == "download" else (403 if ok else 404)
            body = {"ids": blob_ids, "download": True}
            assert await status("POST", f"{base}/blobs/read", headers, body) == download
            path = f"{base}/blobs/{blob_ids[0]}?download=true"
            assert await status("GET", path, headers) == download
        # A link reads its own study and no other, even with its right key.
        assert await status("GET", f"{base}/blobs/{other_blob}", right) == 404
        assert await status("POST", f"{base}/blobs/read", right, {"ids": [other_blob]}) == 404
        # A link gives no session: the account routes stay closed to it.
        assert await status("GET", f"/api/v1/studies/{study_id}", right) == 401
        assert await status("GET", f"/api/v1/blobs/{blob_ids[0]}", right) == 401

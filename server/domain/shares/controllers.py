"""HTTP routes of shares and anonymous links: thin; the rules live in ShareService.

Link routes need no session: the holder of a link proves possession of its secret with the
link's access key in the ``X-SecurePACS-Link-Key`` header (base64url, unpadded) of every request
(protocol.md §9.2, §15.5). A header, never the path or a query string, so that the key is in no
access log line; the access log records route templates only anyway.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Final

from litestar import Controller, Request, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody, PathParameter
from litestar.response import Stream
from litestar.status_codes import HTTP_204_NO_CONTENT

from securepacs.server.domain.accounts.services import SignedIn
from securepacs.server.domain.shares.schemas import (
    CompletableList,
    CompleteRequest,
    KeyLookup,
    KeyLookupRequest,
    LinkOpened,
    LinkRequest,
    LinkView,
    NotificationSettings,
    ShareList,
    ShareRequest,
    ShareUpdate,
    ShareView,
)
from securepacs.server.domain.shares.services import ShareService
from securepacs.server.domain.studies.access import Access, link_access
from securepacs.server.domain.studies.controllers import blob_response, read_many_response
from securepacs.server.domain.studies.schemas import BLOB_ID, ReadRequest
from securepacs.server.domain.studies.services import StudyService

__all__ = ("LINK_KEY_HEADER", "LinkController", "ShareController")

Shares = NamedDependency[ShareService]
Studies = NamedDependency[StudyService]
Me = NamedDependency[SignedIn]
HexId = Annotated[str, PathParameter(pattern=BLOB_ID)]
LINK_KEY_HEADER: Final = "x-securepacs-link-key"


def _access_key(request: Request[Any, Any, Any]) -> bytes | None:
    value = request.headers.get(LINK_KEY_HEADER)
    if value is None:
        return None
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None


async def _link(request: Request[Any, Any, Any], studies: StudyService, link_id: str) -> Access:
    address = request.client.host if request.client else ""
    ctx = studies.ctx
    return await link_access(studies.db, ctx.limiter, link_id, _access_key(request), address)


class ShareController(Controller):
    """Shares with people: Manage Shares, pending shares, public keys to seal to."""

    path = "/api/v1"
    tags = ["shares"]  # noqa: RUF012 -- Litestar reads a plain class attribute

    @post("/keys/lookup", status_code=200)
    async def lookup_keys(
        self, data: JSONBody[KeyLookupRequest], shares: Shares, me: Me
    ) -> KeyLookup:
        """The public keys of the accounts of these emails, for sealing grants to them."""
        return await shares.lookup_keys(me.account, data.emails)

    @get("/studies/{study_id:str}/shares")
    async def list_shares(self, study_id: HexId, shares: Shares, me: Me) -> ShareList:
        """Everyone the study is shared with, and its links (study admins only)."""
        return await shares.shares(me.account, study_id)

    @post("/studies/{study_id:str}/shares", status_code=201)
    async def create_share(
        self, study_id: HexId, data: JSONBody[ShareRequest], shares: Shares, me: Me
    ) -> ShareView:
        """Share the study with one person (pending if the email has no account yet)."""
        return await shares.create(me.account, study_id, data)

    @put("/shares/{share_id:str}", status_code=200)
    async def update_share(
        self, share_id: HexId, data: JSONBody[ShareUpdate], shares: Shares, me: Me
    ) -> ShareView:
        """Change a share's permission or expiry with a new grant."""
        return await shares.update(me.account, share_id, data)

    @delete("/shares/{share_id:str}", status_code=HTTP_204_NO_CONTENT)
    async def delete_share(self, share_id: HexId, shares: Shares, me: Me) -> None:
        """Revoke a share, or leave one shared with me."""
        await shares.delete(me.account, share_id)

    @get("/shares/completable")
    async def completable(self, shares: Shares, me: Me) -> CompletableList:
        """My pending shares whose recipient has registered since."""
        return await shares.completable(me.account)

    @post("/shares/{share_id:str}/complete", status_code=200)
    async def complete_share(
        self, share_id: HexId, data: JSONBody[CompleteRequest], shares: Shares, me: Me
    ) -> ShareView:
        """Seal a pending share to its recipient."""
        return await shares.complete(me.account, share_id, data.grant)

    @post("/studies/{study_id:str}/links", status_code=201)
    async def create_link(
        self, study_id: HexId, data: JSONBody[LinkRequest], shares: Shares, me: Me
    ) -> LinkView:
        """Store a new anonymous link's envelope and access-key verifier."""
        return await shares.create_link(me.account, study_id, data)

    @delete("/links/{link_id:str}", status_code=HTTP_204_NO_CONTENT)
    async def revoke_link(self, link_id: HexId, shares: Shares, me: Me) -> None:
        """Revoke an anonymous link at once."""
        await shares.revoke_link(me.account, link_id)

    @put("/me/notifications", status_code=HTTP_204_NO_CONTENT)
    async def notifications(
        self, data: JSONBody[NotificationSettings], shares: Shares, me: Me
    ) -> None:
        """My Account, Notifications."""
        await shares.set_notifications(me.account, shared_with_me=data.shared_with_me)


class LinkController(Controller):
    """What an anonymous link's holder may do, with the link's access key and no session."""

    path = "/api/v1/links/{link_id:str}"
    tags = ["links"]  # noqa: RUF012 -- Litestar reads a plain class attribute

    @post("/open", status_code=200)
    async def open_link(
        self,
        request: Request[Any, Any, Any],
        link_id: HexId,
        shares: Shares,
        studies: Studies,
    ) -> LinkOpened:
        """The link's envelope and its study, once the access key checks."""
        access = await _link(request, studies, link_id)
        return await shares.open_link(access, studies)

    @post("/blobs/read", status_code=200)
    async def read_many(
        self,
        request: Request[Any, Any, Any],
        link_id: HexId,
        data: JSONBody[ReadRequest],
        studies: Studies,
    ) -> Stream:
        """Whole blobs of the linked study, in the order asked."""
        access = await _link(request, studies, link_id)
        blobs = await studies.link_blobs(access, data.ids, download=data.download)
        return read_many_response(studies, blobs)

    @get("/blobs/{blob_id:str}")
    async def download(
        self,
        request: Request[Any, Any, Any],
        link_id: HexId,
        blob_id: HexId,
        studies: Studies,
        download: FromQuery[bool] = False,
    ) -> Stream:
        """One blob of the linked study, whole or one byte range."""
        access = await _link(request, studies, link_id)
        [blob] = await studies.link_blobs(access, [blob_id], download=download)
        return blob_response(studies, blob, request.headers.get("range"))

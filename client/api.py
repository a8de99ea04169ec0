"""Typed calls to the accounts API, and problem+json turned into :class:`ApiError`."""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING, Any

import msgspec

from securepacs.client.transport import json_body

if TYPE_CHECKING:
    from collections.abc import Sequence

    from securepacs.client.transport import Transport, TransportResponse
    from securepacs.crypto import KdfParams

__all__ = (
    "ApiClient",
    "ApiError",
    "BlobStatusView",
    "BlobsRead",
    "CommitOutcomeView",
    "CompletableView",
    "EndorsementView",
    "KeysFoundView",
    "LinkApiClient",
    "LinkOpenedView",
    "LinkView",
    "LoginView",
    "MeView",
    "SessionView",
    "ShareListView",
    "ShareView",
    "SlotView",
    "StatsView",
    "StudyDetailView",
    "StudySummaryView",
)


class ApiError(Exception):
    """The server refused a request; ``detail`` is written for the person reading it."""

    def __init__(self, status: int, code: str, detail: str, retry_after: str | None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.retry_after = retry_after


class SlotView(msgspec.Struct, frozen=True):
    """A stored key slot."""

    id: str
    slot_type: int
    key_uid: str | None
    envelope: bytes


class LoginView(msgspec.Struct, frozen=True):
    """What the server returns at sign-in: public keys and every key slot."""

    account_id: str
    email: str
    public_keys: bytes
    key_slots: list[SlotView]
    needs_recovery: bool


class MeView(msgspec.Struct, frozen=True):
    """My Account."""

    account_id: str
    email: str
    created_at: str
    email_confirmed: bool
    needs_recovery: bool
    recovery_key_uids: list[str]
    two_factor_enabled: bool
    features: list[str] = msgspec.field(default_factory=list)
    notify_shares: bool = False


class SessionView(msgspec.Struct, frozen=True):
    """One of my sessions (My Account)."""

    id: str
    created_at: str
    last_seen_at: str
    expires_at: str
    remember: bool
    current: bool
    ip_address: str
    user_agent: str


class BlobStatusView(msgspec.Struct, frozen=True):
    """Where a blob upload stands."""

    blob_id: str
    size: int
    part_size: int
    parts: int
    received: list[int]
    complete: bool


class StudySummaryView(msgspec.Struct, frozen=True):
    """A worklist row as the server stores it: opaque boxes."""

    study_id: str
    owner_email: str
    is_owner: bool
    uid_tag: bytes
    wrapped_key: bytes
    metadata: bytes
    manifest_version: int
    instance_count: int
    size: int
    created_at: str
    updated_at: str
    # 4 (admin) for my own studies; a shared study's share, grant, sender and sealed message.
    permission: int = 4
    share_id: str | None = None
    grant: bytes | None = None
    granter_email: str | None = None
    granter_keys: bytes | None = None
    note: bytes | None = None
    expires_at: int = 0


class EndorsementView(msgspec.Struct, frozen=True):
    """A live grant of a study and its recipient's public keys (protocol.md §15.4)."""

    grant: bytes
    recipient_keys: bytes


class CommitOutcomeView(msgspec.Struct, frozen=True):
    """One study of a batch commit: committed when ``code`` is None."""

    study_id: str
    code: str | None = None
    detail: str | None = None


class _CommitOutcomes(msgspec.Struct, frozen=True):
    results: list[CommitOutcomeView]


class StudyDetailView(msgspec.Struct, frozen=True):
    """A study with its sealed manifest and blob ids."""

    summary: StudySummaryView
    manifest: bytes
    blob_ids: list[str]
    owner_keys: bytes = b""
    endorsements: list[EndorsementView] = msgspec.field(default_factory=list)


class KeysFoundView(msgspec.Struct, frozen=True):
    """An email and its account's public keys (None: no confirmed account)."""

    email: str
    public_keys: bytes | None


class _KeyLookup(msgspec.Struct, frozen=True):
    accounts: list[KeysFoundView]


class ShareView(msgspec.Struct, frozen=True):
    """A row of Manage Shares."""

    share_id: str
    study_id: str
    recipient_email: str
    pending: bool
    permission: int
    expires_at: int
    created_at: int
    created_by: str
    note: bytes | None = None


class LinkView(msgspec.Struct, frozen=True):
    """An anonymous link of a study (its secret is only in the URL)."""

    link_id: str
    study_id: str
    permission: int
    expires_at: int
    created_at: int
    created_by: str


class ShareListView(msgspec.Struct, frozen=True):
    """Manage Shares: the shares and links of one study."""

    shares: list[ShareView]
    links: list[LinkView]


class CompletableView(msgspec.Struct, frozen=True):
    """A pending share of mine whose recipient has an account now."""

    share: ShareView
    public_keys: bytes


class _Completable(msgspec.Struct, frozen=True):
    shares: list[CompletableView]


class LinkOpenedView(msgspec.Struct, frozen=True):
    """A link's envelope and study, answered once its access key checked."""

    link_id: str
    envelope: bytes
    permission: int
    expires_at: int
    created_by: str
    creator_keys: bytes
    study: StudyDetailView


class StatsView(msgspec.Struct, frozen=True):
    """My Account statistics."""

    studies: int
    files: int
    used_bytes: int
    limit_bytes: int
    shared_studies: int = 0
    received_studies: int = 0


class _Page(msgspec.Struct, frozen=True):
    studies: list[StudySummaryView]
    next: str | None


class _Lookup(msgspec.Struct, frozen=True):
    studies: list[StudySummaryView]


class _Problem(msgspec.Struct):
    code: str = "unknown"
    detail: str = "The server refused the request."


def kdf_json(params: KdfParams) -> dict[str, Any]:
    """KdfParams as the API carries them."""
    return {
        "alg": params.alg,
        "opslimit": params.opslimit,
        "memlimit_kib": params.memlimit_kib,
        "salt": base64.b64encode(params.salt).decode("ascii"),
    }


def b64(data: bytes) -> str:
    """Bytes as the API carries them."""
    return base64.b64encode(data).decode("ascii")


class BlobsRead(msgspec.Struct, frozen=True):
    """A ``POST .../blobs/read`` as it goes out: path, headers and JSON body."""

    path: str
    headers: dict[str, str]
    content: bytes


class ApiClient:
    """One method per endpoint; raises ApiError for every non-2xx answer."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    async def _call(self, method: str, path: str, body: Any = None) -> bytes:
        return self._checked(await self.transport.request(method, path, body))

    def _checked(self, response: TransportResponse) -> bytes:
        if response.status >= 400:
            try:
                problem = msgspec.json.decode(response.body, type=_Problem)
            except msgspec.DecodeError:
                problem = _Problem()
            raise ApiError(response.status, problem.code, problem.detail, response.retry_after)
        return response.body

    async def register(self, body: dict[str, Any]) -> None:
        """POST /accounts/register."""
        await self._call("POST", "/api/v1/accounts/register", body)

    async def confirm(self, token: str) -> None:
        """POST /accounts/confirm."""
        await self._call("POST", "/api/v1/accounts/confirm", {"token": token})

    async def resend_confirmation(self, email: str) -> None:
        """POST /accounts/confirm/resend."""
        await self._call("POST", "/api/v1/accounts/confirm/resend", {"email": email})

    async def prelogin(self, email: str) -> dict[str, Any]:
        """POST /auth/prelogin: the KDF parameters as JSON."""
        body = await self._call("POST", "/api/v1/auth/prelogin", {"email": email})
        kdf: dict[str, Any] = msgspec.json.decode(body)["kdf"]
        return kdf

    async def login(self, body: dict[str, Any]) -> LoginView:
        """POST /auth/login."""
        return msgspec.json.decode(
            await self._call("POST", "/api/v1/auth/login", body), type=LoginView
        )

    async def logout(self) -> None:
        """POST /auth/logout."""
        await self._call("POST", "/api/v1/auth/logout")

    async def me(self) -> MeView:
        """GET /me."""
        return msgspec.json.decode(await self._call("GET", "/api/v1/me/"), type=MeView)

    async def keys(self) -> LoginView:
        """GET /me/keys."""
        return msgspec.json.decode(await self._call("GET", "/api/v1/me/keys"), type=LoginView)

    async def change_password(self, body: dict[str, Any]) -> None:
        """POST /me/password."""
        await self._call("POST", "/api/v1/me/password", body)

    async def store_password_slot(self, slot: bytes) -> None:
        """PUT /me/password-slot."""
        await self._call("PUT", "/api/v1/me/password-slot", {"password_slot": b64(slot)})

    async def request_reset(self, email: str) -> None:
        """POST /auth/password-reset."""
        await self._call("POST", "/api/v1/auth/password-reset", {"email": email})

    async def complete_reset(self, body: dict[str, Any]) -> None:
        """POST /auth/password-reset/complete."""
        await self._call("POST", "/api/v1/auth/password-reset/complete", body)

    async def add_recovery_key(self, slot: bytes, replace: bool) -> list[str]:
        """POST /me/recovery-keys; returns the Key UIDs."""
        body = await self._call(
            "POST", "/api/v1/me/recovery-keys", {"slot": b64(slot), "replace": replace}
        )
        uids: list[str] = msgspec.json.decode(body)["key_uids"]
        return uids

    async def invalidate_recovery_keys(self) -> None:
        """DELETE /me/recovery-keys."""
        await self._call("DELETE", "/api/v1/me/recovery-keys")

    async def start_two_factor(self) -> tuple[str, str]:
        """POST /me/2fa: (secret, otpauth URI)."""
        body = msgspec.json.decode(await self._call("POST", "/api/v1/me/2fa"))
        return body["secret"], body["otpauth_uri"]

    async def confirm_two_factor(self, code: str) -> list[str]:
        """POST /me/2fa/confirm: the recovery codes."""
        body = await self._call("POST", "/api/v1/me/2fa/confirm", {"code": code})
        codes: list[str] = msgspec.json.decode(body)["recovery_codes"]
        return codes

    async def disable_two_factor(self, code: str) -> None:
        """POST /me/2fa/disable."""
        await self._call("POST", "/api/v1/me/2fa/disable", {"code": code})

    async def sessions(self) -> list[SessionView]:
        """GET /me/sessions."""
        body = await self._call("GET", "/api/v1/me/sessions")
        return msgspec.json.decode(body, type=list[SessionView])

    async def revoke_session(self, session_id: str) -> None:
        """DELETE /me/sessions/{id}."""
        await self._call("DELETE", f"/api/v1/me/sessions/{session_id}")

    # Blobs and studies ---------------------------------------------------------------------

    async def create_blob(self, blob_id: str, size: int) -> BlobStatusView:
        """POST /blobs/{id}: reserve space, or learn which parts already arrived."""
        body = await self._call("POST", f"/api/v1/blobs/{blob_id}", {"size": size})
        return msgspec.json.decode(body, type=BlobStatusView)

    async def _put(self, path: str, content: bytes, sha256: bytes | None) -> BlobStatusView:
        raw = sha256 if sha256 is not None else hashlib.sha256(content).digest()
        digest = base64.b64encode(raw).decode("ascii")
        headers = {
            "content-type": "application/octet-stream",
            "content-digest": f"sha-256=:{digest}:",
        }
        response = await self.transport.send("PUT", path, content=content, headers=headers)
        return msgspec.json.decode(self._checked(response), type=BlobStatusView)

    async def put_blob(
        self, blob_id: str, content: bytes, *, sha256: bytes | None = None
    ) -> BlobStatusView:
        """PUT /blobs/{id}: a one-part blob in one request (reserve, store, complete).

        ``sha256`` is the content's digest when the caller has it already (a manifest entry's
        ciphertext hash); it is computed otherwise.
        """
        return await self._put(f"/api/v1/blobs/{blob_id}", content, sha256)

    async def put_blobs(self, blobs: Sequence[tuple[str, bytes, bytes]]) -> int:
        """POST /blobs/batch: many one-part blobs, as (id, SHA-256, data), in one request.

        Returns how many were new.
        """
        body = msgspec.msgpack.encode(
            [(bytes.fromhex(blob_id), sha256, data) for blob_id, sha256, data in blobs]
        )
        response = await self.transport.send(
            "POST",
            "/api/v1/blobs/batch",
            content=body,
            headers={"content-type": "application/msgpack"},
        )
        stored: int = msgspec.json.decode(self._checked(response))["stored"]
        return stored

    async def put_part(
        self, blob_id: str, number: int, content: bytes, *, sha256: bytes | None = None
    ) -> BlobStatusView:
        """PUT /blobs/{id}/parts/{n}, with its SHA-256 (computed if not given) in Content-Digest."""
        return await self._put(f"/api/v1/blobs/{blob_id}/parts/{number}", content, sha256)

    async def complete_blob(self, blob_id: str) -> BlobStatusView:
        """POST /blobs/{id}/complete."""
        body = await self._call("POST", f"/api/v1/blobs/{blob_id}/complete")
        return msgspec.json.decode(body, type=BlobStatusView)

    async def abandon_blob(self, blob_id: str) -> None:
        """DELETE /blobs/{id}: cancel an upload no study holds."""
        await self._call("DELETE", f"/api/v1/blobs/{blob_id}")

    async def get_blob(
        self, blob_id: str, start: int, end: int, *, download: bool = False
    ) -> bytes:
        """GET /blobs/{id} bytes ``start`` to ``end`` (exclusive), by HTTP Range.

        ``download``: part of a download, which a share needs Download permission for.
        """
        query = "?download=true" if download else ""
        response = await self.transport.send(
            "GET",
            f"/api/v1/blobs/{blob_id}{query}",
            headers={"range": f"bytes={start}-{end - 1}"},
        )
        return self._checked(response)

    def read_blobs_request(self, blob_ids: list[str], *, download: bool = False) -> BlobsRead:
        """The request :meth:`read_blobs` sends.

        For the browser worker's own reader, which sends it with fetch (protocol.md §14.5).
        """
        content, headers = json_body({"ids": blob_ids, "download": download})
        return BlobsRead("/api/v1/blobs/read", headers, content or b"")

    async def read_blobs(self, blob_ids: list[str], *, download: bool = False) -> bytes:
        """POST /blobs/read: whole blobs in this order, one after the other."""
        request = self.read_blobs_request(blob_ids, download=download)
        response = await self.transport.send(
            "POST", request.path, content=request.content, headers=request.headers
        )
        return self._checked(response)

    async def commit_study(self, study_id: str, body: dict[str, Any]) -> StudyDetailView:
        """PUT /studies/{id}: make the study or its next version visible."""
        raw = await self._call("PUT", f"/api/v1/studies/{study_id}", body)
        return msgspec.json.decode(raw, type=StudyDetailView)

    async def commit_studies(
        self, commits: Sequence[tuple[str, dict[str, Any]]]
    ) -> list[CommitOutcomeView]:
        """POST /studies/commits: commit many studies, as (study id, body), each on its own."""
        body = {"commits": [{"study_id": study_id, **fields} for study_id, fields in commits]}
        raw = await self._call("POST", "/api/v1/studies/commits", body)
        return msgspec.json.decode(raw, type=_CommitOutcomes).results

    async def list_studies(self, source: str = "mine") -> list[StudySummaryView]:
        """GET /studies, every page: mine, or with ``source`` "shared" those shared with me."""
        rows: list[StudySummaryView] = []
        cursor: str | None = None
        while True:
            query = f"?source={source}&limit=5000"
            if cursor:
                query += f"&after={cursor}"
            page = msgspec.json.decode(
                await self._call("GET", f"/api/v1/studies/{query}"), type=_Page
            )
            rows += page.studies
            if page.next is None:
                return rows
            cursor = page.next

    async def lookup_studies(self, uid_tags: list[bytes]) -> list[StudySummaryView]:
        """POST /studies/lookup: my studies with one of these UID tags."""
        body = {"uid_tags": [b64(tag) for tag in uid_tags]}
        raw = await self._call("POST", "/api/v1/studies/lookup", body)
        return msgspec.json.decode(raw, type=_Lookup).studies

    async def study(self, study_id: str) -> StudyDetailView:
        """GET /studies/{id}."""
        raw = await self._call("GET", f"/api/v1/studies/{study_id}")
        return msgspec.json.decode(raw, type=StudyDetailView)

    async def delete_study(self, study_id: str) -> None:
        """DELETE /studies/{id}."""
        await self._call("DELETE", f"/api/v1/studies/{study_id}")

    async def stats(self) -> StatsView:
        """GET /studies/stats."""
        return msgspec.json.decode(await self._call("GET", "/api/v1/studies/stats"), type=StatsView)

    # Shares and links ----------------------------------------------------------------------

    async def lookup_keys(self, emails: list[str]) -> list[KeysFoundView]:
        """POST /keys/lookup: the public keys of these emails' accounts."""
        raw = await self._call("POST", "/api/v1/keys/lookup", {"emails": emails})
        return msgspec.json.decode(raw, type=_KeyLookup).accounts

    async def shares(self, study_id: str) -> ShareListView:
        """GET /studies/{id}/shares."""
        raw = await self._call("GET", f"/api/v1/studies/{study_id}/shares")
        return msgspec.json.decode(raw, type=ShareListView)

    async def create_share(self, study_id: str, body: dict[str, Any]) -> ShareView:
        """POST /studies/{id}/shares."""
        raw = await self._call("POST", f"/api/v1/studies/{study_id}/shares", body)
        return msgspec.json.decode(raw, type=ShareView)

    async def update_share(self, share_id: str, body: dict[str, Any]) -> ShareView:
        """PUT /shares/{id}."""
        raw = await self._call("PUT", f"/api/v1/shares/{share_id}", body)
        return msgspec.json.decode(raw, type=ShareView)

    async def delete_share(self, share_id: str) -> None:
        """DELETE /shares/{id}."""
        await self._call("DELETE", f"/api/v1/shares/{share_id}")

    async def completable_shares(self) -> list[CompletableView]:
        """GET /shares/completable."""
        raw = await self._call("GET", "/api/v1/shares/completable")
        return msgspec.json.decode(raw, type=_Completable).shares

    async def complete_share(self, share_id: str, grant: bytes) -> ShareView:
        """POST /shares/{id}/complete."""
        raw = await self._call("POST", f"/api/v1/shares/{share_id}/complete", {"grant": b64(grant)})
        return msgspec.json.decode(raw, type=ShareView)

    async def create_link(self, study_id: str, body: dict[str, Any]) -> LinkView:
        """POST /studies/{id}/links."""
        raw = await self._call("POST", f"/api/v1/studies/{study_id}/links", body)
        return msgspec.json.decode(raw, type=LinkView)

    async def revoke_link(self, link_id: str) -> None:
        """DELETE /links/{id}."""
        await self._call("DELETE", f"/api/v1/links/{link_id}")

    async def set_notifications(self, *, shared_with_me: bool) -> None:
        """PUT /me/notifications."""
        await self._call("PUT", "/api/v1/me/notifications", {"shared_with_me": shared_with_me})


class LinkApiClient(ApiClient):
    """The API as an anonymous link's holder sees it: one study, by proof of the link's key.

    The access key goes in a header of every request (protocol.md §15.5), never in a path or
    query string. ``study``, ``get_blob`` and ``read_blobs`` answer like the signed-in ones, so
    the downloader and the viewer's reader work unchanged.
    """

    def __init__(self, transport: Transport, link_id: str, access_key: bytes) -> None:
        super().__init__(transport)
        self.link_id = link_id
        self._headers = {
            "x-securepacs-link-key": base64.urlsafe_b64encode(access_key).rstrip(b"=").decode()
        }
        self._opened: LinkOpenedView | None = None

    async def open_link(self) -> LinkOpenedView:
        """POST /links/{id}/open: the envelope and the study (fetched again on every call)."""
        content, headers = json_body({})
        response = await self.transport.send(
            "POST",
            f"/api/v1/links/{self.link_id}/open",
            content=content,
            headers={**headers, **self._headers},
        )
        self._opened = msgspec.json.decode(self._checked(response), type=LinkOpenedView)
        return self._opened

    async def study(self, study_id: str) -> StudyDetailView:
        """The linked study (the only one this client can name)."""
        opened = await self.open_link()
        if opened.study.summary.study_id != study_id:
            raise ApiError(404, "not_found", "This link is for another study.", None)
        return opened.study

    async def get_blob(
        self, blob_id: str, start: int, end: int, *, download: bool = False
    ) -> bytes:
        """GET /links/{id}/blobs/{blob}, one byte range."""
        query = "?download=true" if download else ""
        response = await self.transport.send(
            "GET",
            f"/api/v1/links/{self.link_id}/blobs/{blob_id}{query}",
            headers={"range": f"bytes={start}-{end - 1}", **self._headers},
        )
        return self._checked(response)

    def read_blobs_request(self, blob_ids: list[str], *, download: bool = False) -> BlobsRead:
        """POST /links/{id}/blobs/read, with the link's access key."""
        content, headers = json_body({"ids": blob_ids, "download": download})
        return BlobsRead(
            f"/api/v1/links/{self.link_id}/blobs/read",
            {**headers, **self._headers},
            content or b"",
        )

"""Sharing studies with people and through anonymous links (protocol.md §8, §9, §15).

Every share is sealed here, on the sharer's client: the study key is opened with the sharer's
own keys, sealed to the recipient's public keys (which the server hands out and a person can
check by fingerprint, ZK-4) and signed. An anonymous link wraps the study key under a key
derived from a secret that exists only in the link's URL fragment; the server gets the wrapped
key and a hash of a second derived key, with which the link's holder later proves possession.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from securepacs.client.api import ApiError, LinkApiClient, ShareView
from securepacs.client.download import Downloader, LinkKeys
from securepacs.client.library import study_key_of
from securepacs.client.trust import FingerprintChanged, Identity, KeysRefused, verified_keys
from securepacs.crypto import (
    PERMISSION_ADMIN,
    PERMISSION_DOWNLOAD,
    PERMISSION_EDIT,
    PERMISSION_VIEW,
    CryptoError,
    MalformedEnvelope,
    UnsupportedVersion,
    encode_fragment,
    link_access,
    new_link_id,
    new_link_secret,
    open_link,
    parse_fragment,
    seal_grant,
    seal_link,
    seal_note,
)
from securepacs.crypto.link import LINK_ID_BYTES

if TYPE_CHECKING:
    from securepacs.client.api import ApiClient, LinkView
    from securepacs.client.transport import Transport
    from securepacs.client.trust import FingerprintMemory
    from securepacs.crypto import AccountKeys, LinkSecret, StudyKey

__all__ = (
    "PERMISSION_LABELS",
    "CreatedLink",
    "LinkAddress",
    "LinkProblem",
    "OpenedLinkStudy",
    "ShareProblem",
    "ShareResult",
    "Sharing",
    "expiry_of_date",
    "link_url",
    "open_link_url",
    "parse_link_url",
    "permission_of",
)

# What each permission lets the recipient do, in the words the interface uses (ZK-5: these are
# server-enforced; every permission hands over the study key, so anyone who can view can copy).
PERMISSION_LABELS: Final = {
    PERMISSION_VIEW: "View",
    PERMISSION_DOWNLOAD: "Download",
    PERMISSION_EDIT: "Edit",
    PERMISSION_ADMIN: "Admin",
}
_BY_NAME: Final = {label.lower(): value for value, label in PERMISSION_LABELS.items()}


class ShareProblem(Exception):
    """A share that cannot be made or changed; the message says what to do."""


class LinkProblem(Exception):
    """A link that does not open; the message is the one to show (manual, troubleshooting)."""


def permission_of(name: str) -> int:
    """``view``, ``download``, ``edit`` or ``admin`` (any case) as its protocol value."""
    value = _BY_NAME.get(name.strip().lower())
    if value is None:
        raise ShareProblem(f"'{name}' is not a permission. Use view, download, edit or admin.")
    return value


def expiry_of_date(day: date | None) -> int:
    """The expiry a date stands for: the end of that day in UTC (0: no expiry).

    Raises:
        ShareProblem: the day has already ended.
    """
    if day is None:
        return 0
    try:
        moment = datetime.combine(day + timedelta(days=1), time(0, 0), UTC)
    except OverflowError:
        raise ShareProblem("Choose an expiration date before 9999-12-31, or none.") from None
    if moment <= datetime.now(UTC):
        raise ShareProblem("The expiration date has passed. Choose a later date, or none.")
    return int(moment.timestamp())


@dataclass(frozen=True, slots=True)
class ShareResult:
    """A share made: the row, and the recipient as this client checked them."""

    share: ShareView
    recipient: Identity | None  # None: no account yet; the share completes later


@dataclass(frozen=True, slots=True)
class CreatedLink:
    """A new anonymous link: the URL to pass on (shown once) and its row."""

    url: str
    link: LinkView


@dataclass(frozen=True, slots=True)
class LinkAddress:
    """A link URL, read: where the server is, which link, its secret, whether it has a password."""

    base_url: str
    link_id: bytes
    secret: LinkSecret
    password_required: bool


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def link_url(base_url: str, link_id: bytes, secret: LinkSecret, *, password_required: bool) -> str:
    """``https://host/s/<link id>#<fragment>`` (protocol.md §9.1)."""
    fragment = encode_fragment(secret, password_required=password_required)
    return f"{base_url.rstrip('/')}/s/{_b64url(link_id)}#{fragment}"


_MODIFIED: Final = (
    "This link is incomplete or was changed. Copy the whole link from the message you received, "
    "or ask the sender for a new one."
)


def parse_link_url(url: str) -> LinkAddress:
    """Read a link URL; a cut or edited one is refused with the manual's advice.

    Raises:
        LinkProblem: not a SecurePACS link, or incomplete, or changed.
    """
    parts = urlsplit(url.strip())
    path = parts.path
    if not parts.scheme or not parts.netloc or "/s/" not in path or not parts.fragment:
        raise LinkProblem(_MODIFIED)
    prefix, _, encoded = path.rpartition("/s/")
    try:
        link_id = base64.urlsafe_b64decode(encoded + "==")
    except (binascii.Error, ValueError):
        raise LinkProblem(_MODIFIED) from None
    if len(link_id) != LINK_ID_BYTES or _b64url(link_id) != encoded:
        raise LinkProblem(_MODIFIED)
    try:
        secret, password_required = parse_fragment(parts.fragment)
    except MalformedEnvelope:
        raise LinkProblem(_MODIFIED) from None
    except UnsupportedVersion:
        raise LinkProblem(
            "This link was made by a newer version of SecurePACS. Open it in the browser."
        ) from None
    return LinkAddress(
        base_url=f"{parts.scheme}://{parts.netloc}{prefix}",
        link_id=link_id,
        secret=secret,
        password_required=password_required,
    )


@dataclass(frozen=True, slots=True)
class OpenedLinkStudy:
    """An anonymous link, opened: the study's downloader and what the link allows."""

    api: LinkApiClient
    keys: LinkKeys
    permission: int
    expires_at: int
    created_by: str

    def downloader(self, *, download: bool) -> Downloader:
        """A downloader (or viewer's reader) of the linked study."""
        return Downloader(self.api, None, link=self.keys, download=download)


async def open_link_url(
    transport: Transport, address: LinkAddress, password: str | None
) -> OpenedLinkStudy:
    """Prove possession of the link's secret to the server, then open its envelope.

    Raises:
        LinkProblem: wrong password, changed link, expired or revoked (the server says which),
            or an envelope that does not open.
    """
    if address.password_required and not password:
        raise LinkProblem("This link has a password. Enter the password the sender gave you.")
    access = link_access(address.secret, password if address.password_required else None)
    api = LinkApiClient(transport, address.link_id.hex(), access.access_key)
    try:
        opened = await api.open_link()
    except ApiError as error:
        if error.code == "link_not_found" and address.password_required:
            raise LinkProblem(
                "The password is wrong, or the link was changed. Check the password and copy "
                "the whole link again."
            ) from None
        if error.code in {"link_not_found", "link_expired", "link_revoked", "rate_limited"}:
            raise LinkProblem(error.detail) from None
        raise
    try:
        link = open_link(opened.envelope, address.link_id, access)
    except CryptoError:
        raise LinkProblem(
            "This link's data was changed on the server, so the study cannot be opened safely. "
            "Ask the sender for a new link."
        ) from None
    creator = verified_keys(opened.creator_keys)
    if link.study_id.hex() != opened.study.summary.study_id or creator is None:
        raise LinkProblem(
            "This link's data does not match its study. Ask the sender for a new link."
        )
    if creator.ed25519 != link.creator:
        raise LinkProblem(
            "The server names someone else than the person who made this link. Ask the sender "
            "for a new link."
        )
    keys = LinkKeys(study_id=link.study_id.hex(), study_key=link.study_key, creator=link.creator)
    return OpenedLinkStudy(
        api=api,
        keys=keys,
        permission=link.permission,
        expires_at=link.expires_at,
        created_by=opened.created_by,
    )


class Sharing:
    """Share, change, revoke; complete pending shares; make and revoke links."""

    def __init__(
        self, api: ApiClient, keys: AccountKeys, fingerprints: FingerprintMemory, base_url: str
    ) -> None:
        self.api = api
        self.keys = keys
        self.fingerprints = fingerprints
        self.base_url = base_url

    async def recipient(self, email: str) -> Identity | None:
        """The person's verified keys and how their fingerprint compares; None: no account.

        Raises:
            FingerprintChanged: their keys differ from the ones this client saw before.
            KeysRefused: the server's keys for them do not verify.
        """
        [found] = await self.api.lookup_keys([email])
        if found.public_keys is None:
            return None
        return self.fingerprints.identify(found.email, found.public_keys)

    async def accept_keys(self, email: str, compared: str) -> str:
        """Trust ``email``'s changed keys once their fingerprint was compared with them (ZK-4).

        ``compared`` is the fingerprint the person read out with its owner. It must be the one
        the server serves now, so that keys which change again in between are not accepted.
        Returns the fingerprint now remembered.

        Raises:
            ShareProblem: they have no account, or the server's keys have another fingerprint.
            KeysRefused: the server's keys for them do not verify.
        """
        [found] = await self.api.lookup_keys([email])
        if found.public_keys is None:
            raise ShareProblem(f"There is no account for {email}. Nothing was changed.")
        try:
            now = self.fingerprints.identify(found.email, found.public_keys).fingerprint
        except FingerprintChanged as changed:
            now = changed.now
        if _digits(compared) != _digits(now):
            raise ShareProblem(
                f"The server's keys for {found.email} have the fingerprint {now}, not the one "
                f"you compared ({compared.strip()}). Nothing was changed: compare it with them "
                "again."
            )
        self.fingerprints.accept(found.email, now)
        return now

    async def _study_key(self, study_id: str) -> StudyKey:
        detail = await self.api.study(study_id)
        try:
            return study_key_of(self.keys, detail.summary)
        except CryptoError:
            raise ShareProblem(
                "The study's key does not open with your keys: it was changed on the server. "
                "Nothing was shared."
            ) from None

    async def share(
        self,
        study_id: str,
        email: str,
        permission: int,
        expires_at: int = 0,
        message: str = "",
    ) -> ShareResult:
        """Share a study with one person: sealed to them now, or pending until they register.

        Raises:
            ShareProblem: not allowed, or the server refused (its words).
            FingerprintChanged, KeysRefused: as :meth:`recipient`.
        """
        study_key = await self._study_key(study_id)
        person = await self.recipient(email)
        share_id = secrets.token_bytes(16)
        grant = None
        if person is not None:
            grant = seal_grant(
                self.keys, person.keys, bytes.fromhex(study_id), study_key, permission, expires_at
            )
        note = None
        if message.strip():
            try:
                note = seal_note(study_key, bytes.fromhex(study_id), share_id, message.strip())
            except ValueError:
                raise ShareProblem(
                    "The message is too long. Keep it under 4,000 characters."
                ) from None
        body: dict[str, object] = {
            "share_id": share_id.hex(),
            "recipient_email": email.strip(),
            "permission": permission,
            "expires_at": expires_at,
        }
        if grant is not None:
            body["grant"] = base64.b64encode(grant).decode("ascii")
        if note is not None:
            body["note"] = base64.b64encode(note).decode("ascii")
        try:
            view = await self.api.create_share(study_id, body)
        except ApiError as error:
            raise ShareProblem(error.detail) from None
        return ShareResult(share=view, recipient=person)

    async def update(self, share: ShareView, permission: int, expires_at: int = 0) -> ShareView:
        """New permission or expiry for a share: a new grant, sealed and signed here."""
        body: dict[str, object] = {"permission": permission, "expires_at": expires_at}
        if not share.pending:
            study_key = await self._study_key(share.study_id)
            person = await self.recipient(share.recipient_email)
            if person is None:
                raise ShareProblem(
                    f"{share.recipient_email} no longer has an account. Delete this share."
                )
            grant = seal_grant(
                self.keys,
                person.keys,
                bytes.fromhex(share.study_id),
                study_key,
                permission,
                expires_at,
            )
            body["grant"] = base64.b64encode(grant).decode("ascii")
        try:
            return await self.api.update_share(share.share_id, body)
        except ApiError as error:
            raise ShareProblem(error.detail) from None

    async def complete_pending(self) -> tuple[list[ShareView], list[str]]:
        """Seal my pending shares to the people who have registered since.

        Returns the completed shares and, for any left pending, why (a changed fingerprint).
        """
        done: list[ShareView] = []
        problems: list[str] = []
        for pending in await self.api.completable_shares():
            share = pending.share
            try:
                person = self.fingerprints.identify(share.recipient_email, pending.public_keys)
                study_key = await self._study_key(share.study_id)
            except (FingerprintChanged, KeysRefused, ShareProblem) as error:
                problems.append(str(error))
                continue
            grant = seal_grant(
                self.keys,
                person.keys,
                bytes.fromhex(share.study_id),
                study_key,
                share.permission,
                share.expires_at,
            )
            try:
                done.append(await self.api.complete_share(share.share_id, grant))
            except ApiError as error:
                problems.append(error.detail)
        return done, problems

    async def unshare(self, share_or_link_id: str) -> str:
        """Revoke a share or a link by its id; says which it was."""
        try:
            await self.api.delete_share(share_or_link_id)
        except ApiError as error:
            if error.status != 404:
                raise ShareProblem(error.detail) from None
        else:
            return "share"
        try:
            await self.api.revoke_link(share_or_link_id)
        except ApiError as error:
            if error.status == 404:
                raise ShareProblem(
                    "No share or link of yours has this id. `securepacs shares STUDY` lists them."
                ) from None
            raise ShareProblem(error.detail) from None
        return "link"

    async def create_link(
        self,
        study_id: str,
        permission: int,
        expires_at: int = 0,
        password: str | None = None,
    ) -> CreatedLink:
        """Make an anonymous link; its URL (with the secret) exists only in the answer."""
        study_key = await self._study_key(study_id)
        secret = new_link_secret()
        link_id = new_link_id()
        access = link_access(secret, password or None)
        envelope = seal_link(
            self.keys, access, link_id, bytes.fromhex(study_id), study_key, permission, expires_at
        )
        body = {
            "link_id": link_id.hex(),
            "permission": permission,
            "expires_at": expires_at,
            "envelope": base64.b64encode(envelope).decode("ascii"),
            "verifier": base64.b64encode(access.verifier).decode("ascii"),
        }
        try:
            view = await self.api.create_link(study_id, body)
        except ApiError as error:
            raise ShareProblem(error.detail) from None
        url = link_url(self.base_url, link_id, secret, password_required=bool(password))
        return CreatedLink(url=url, link=view)


def _digits(fingerprint: str) -> str:
    """A fingerprint as typed or read out, without its spaces."""
    return "".join(c for c in fingerprint if c.isdigit())

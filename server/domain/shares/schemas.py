"""Wire types of shares and links.

Bytes travel as standard base64 in JSON, ids as lowercase hex, times as seconds since 1970 (0:
never), the unit grants and link envelopes sign.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

from securepacs.server.domain.studies.schemas import BLOB_ID, StudyDetail

__all__ = (
    "MAX_EXPIRY",
    "MAX_LOOKUP_EMAILS",
    "Completable",
    "CompletableList",
    "CompleteRequest",
    "KeyLookup",
    "KeyLookupRequest",
    "KeysFound",
    "LinkOpened",
    "LinkRequest",
    "LinkView",
    "NotificationSettings",
    "ShareList",
    "ShareRequest",
    "ShareUpdate",
    "ShareView",
)

HexId = Annotated[str, msgspec.Meta(pattern=BLOB_ID)]
Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
Permission = Annotated[int, msgspec.Meta(ge=1, le=4)]
# 9999-12-31T23:59:59Z: the latest moment a database timestamp holds (grants allow more).
MAX_EXPIRY: Final = 253_402_300_799
Expiry = Annotated[int, msgspec.Meta(ge=0, le=MAX_EXPIRY)]
Envelope = Annotated[bytes, msgspec.Meta(min_length=1, max_length=512)]
# A note holds at most 4 KiB of text (protocol.md §8.6) plus its envelope.
Note = Annotated[bytes, msgspec.Meta(min_length=1, max_length=4096 + 256)]
Verifier = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
MAX_LOOKUP_EMAILS: Final = 20


class _Wire(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class KeyLookupRequest(_Wire, frozen=True):
    """Whose public keys: the emails a person is about to share with."""

    emails: Annotated[list[Email], msgspec.Meta(min_length=1, max_length=MAX_LOOKUP_EMAILS)]


class KeysFound(_Wire, frozen=True):
    """An email and its account's self-signed public keys; None: no account (yet)."""

    email: str
    public_keys: bytes | None


class KeyLookup(_Wire, frozen=True):
    """One answer per email asked, in the order asked."""

    accounts: list[KeysFound]


class ShareRequest(_Wire, frozen=True):
    """A new share: sealed to a registered recipient, or pending (no grant) for a new email."""

    share_id: HexId
    recipient_email: Email
    permission: Permission
    expires_at: Expiry = 0
    grant: Envelope | None = None
    note: Note | None = None


class ShareUpdate(_Wire, frozen=True):
    """New terms for a share: a new grant carries them (the server cannot edit one)."""

    permission: Permission
    expires_at: Expiry = 0
    grant: Envelope | None = None


class CompleteRequest(_Wire, frozen=True):
    """The grant of a pending share whose recipient has registered since."""

    grant: Envelope


class ShareView(_Wire, frozen=True):
    """A row of Manage Shares."""

    share_id: str
    study_id: str
    recipient_email: str
    # True while the share has no grant (its email had no confirmed account when it was made);
    # it completes when the sharer's client next runs after they have registered.
    pending: bool
    permission: int
    expires_at: int
    created_at: int
    created_by: str
    note: bytes | None


class LinkView(_Wire, frozen=True):
    """An anonymous link as Manage Shares lists it (its secret is nowhere but in the URL)."""

    link_id: str
    study_id: str
    permission: int
    expires_at: int
    created_at: int
    created_by: str


class ShareList(_Wire, frozen=True):
    """Everyone a study is shared with, and its links."""

    shares: list[ShareView]
    links: list[LinkView]


class Completable(_Wire, frozen=True):
    """A pending share of mine whose recipient now has an account: seal the grant to these keys."""

    share: ShareView
    public_keys: bytes


class CompletableList(_Wire, frozen=True):
    """Pending shares the signed-in client can complete now."""

    shares: list[Completable]


class LinkRequest(_Wire, frozen=True):
    """A new anonymous link: its envelope and the verifier of its access key."""

    link_id: HexId
    permission: Permission
    envelope: Envelope
    verifier: Verifier
    expires_at: Expiry = 0


class LinkOpened(_Wire, frozen=True):
    """What a link's holder gets once its access key checked: the envelope and the study."""

    link_id: str
    envelope: bytes
    permission: int
    expires_at: int
    created_by: str
    creator_keys: bytes
    study: StudyDetail


class NotificationSettings(_Wire, frozen=True):
    """My Account, Notifications."""

    shared_with_me: bool

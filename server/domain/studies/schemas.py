"""Wire types of the studies API. Bytes travel as standard base64 in JSON; ids as lowercase hex."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final

import msgspec

from securepacs.crypto.envelope import MAX_MANIFEST_ENTRIES

__all__ = (
    "BLOB_ID",
    "MAX_MANIFEST_BYTES",
    "BatchItem",
    "BatchResult",
    "BlobStatus",
    "CommitBatch",
    "CommitItem",
    "CommitOutcome",
    "CommitOutcomes",
    "CommitRequest",
    "CreateBlobRequest",
    "Endorsement",
    "LookupRequest",
    "LookupResponse",
    "StatsResponse",
    "StudyDetail",
    "StudyPage",
    "StudySummary",
)

# Blob ids are the stream's 16-byte file id, study ids the client's 16-byte study id, in hex.
BLOB_ID: Final = r"^[0-9a-f]{32}$"
HexId = Annotated[str, msgspec.Meta(pattern=BLOB_ID)]
Tag = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
# A manifest entry is under 200 bytes sealed; this leaves room for the envelope and signature.
MAX_MANIFEST_BYTES: Final = 256 * MAX_MANIFEST_ENTRIES
MAX_BLOB_BYTES: Final = 1 << 40
MAX_COMMITS: Final = 100


class _Wire(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class CreateBlobRequest(_Wire, frozen=True):
    """Reserve storage for one sealed instance of ``size`` bytes."""

    size: Annotated[int, msgspec.Meta(ge=1, le=MAX_BLOB_BYTES)]


class BlobStatus(_Wire, frozen=True):
    """Where an upload stands: which parts arrived, so a restarted client sends only the rest."""

    blob_id: str
    size: int
    part_size: int
    parts: int
    received: list[int]
    complete: bool


class BatchItem(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """One whole one-part blob inside a batch: its id, its SHA-256, its bytes (msgpack)."""

    blob_id: Annotated[bytes, msgspec.Meta(min_length=16, max_length=16)]
    sha256: Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
    data: Annotated[bytes, msgspec.Meta(min_length=1)]


class BatchResult(_Wire, frozen=True):
    """How many blobs of a batch were stored now, and how many the server already held."""

    stored: int
    already_stored: int


class CommitRequest(_Wire, frozen=True):
    """Make a study visible (or a new version of it) with every blob it lists complete."""

    uid_tag: Tag
    wrapped_key: Annotated[bytes, msgspec.Meta(min_length=1, max_length=512)]
    metadata: Annotated[bytes, msgspec.Meta(min_length=1, max_length=2 * 1024 * 1024)]
    manifest: Annotated[bytes, msgspec.Meta(min_length=1, max_length=MAX_MANIFEST_BYTES)]
    manifest_version: Annotated[int, msgspec.Meta(ge=1, le=2**32 - 1)]
    blob_ids: Annotated[list[HexId], msgspec.Meta(min_length=1, max_length=MAX_MANIFEST_ENTRIES)]


class CommitItem(CommitRequest, frozen=True):
    """One study of a batch commit: the commit request and the study it is for."""

    study_id: HexId


class CommitBatch(_Wire, frozen=True):
    """Commit many studies in one request; each is all or nothing on its own."""

    commits: Annotated[list[CommitItem], msgspec.Meta(min_length=1, max_length=MAX_COMMITS)]


class CommitOutcome(_Wire, frozen=True):
    """What became of one study of a batch: ``code`` is None when it was committed."""

    study_id: str
    code: str | None = None
    detail: str | None = None


class CommitOutcomes(_Wire, frozen=True):
    """One outcome per study of the batch, in the order they were sent."""

    results: list[CommitOutcome]


class StudySummary(_Wire, frozen=True):
    """A worklist row as the server has it: opaque boxes and sizes."""

    study_id: str
    owner_email: str
    is_owner: bool
    uid_tag: bytes
    wrapped_key: bytes
    metadata: bytes
    manifest_version: int
    instance_count: int
    size: int
    created_at: datetime
    updated_at: datetime
    # What the requester may do (protocol.md §8.1): 4 (admin) for the owner.
    permission: int = 4
    # A study shared with the requester: the share, its sealed grant, who granted it and the
    # sealed message (protocol.md §8.6); expires_at in seconds since 1970, 0 for never.
    share_id: str | None = None
    grant: bytes | None = None
    granter_email: str | None = None
    # The granter's self-signed public keys: the reader checks the grant's signer against them
    # and their fingerprint against the one it remembers for granter_email (protocol.md §8.5).
    granter_keys: bytes | None = None
    note: bytes | None = None
    expires_at: int = 0


class Endorsement(_Wire, frozen=True):
    """A live grant of the study and its recipient's public keys (protocol.md §15.4).

    Readers walk these from the keys they trust to decide whose manifest signatures to accept:
    a person given Edit by someone trusted may sign the study's next manifest.
    """

    grant: bytes
    recipient_keys: bytes


class StudyDetail(_Wire, frozen=True):
    """One study with its signed manifest and the ids of its blobs."""

    summary: StudySummary
    manifest: bytes
    blob_ids: list[str]
    owner_keys: bytes = b""
    endorsements: list[Endorsement] = msgspec.field(default_factory=list)


class StudyPage(_Wire, frozen=True):
    """A page of the worklist; ``next`` is the cursor of the following page."""

    studies: list[StudySummary]
    next: str | None


# Blobs one read request may name; the client keeps each request to a few MiB of ciphertext.
MAX_READ_BLOBS: Final = 512


class ReadRequest(_Wire, frozen=True):
    """Several whole blobs, in this order, in one response (a viewer or download reading ahead)."""

    ids: Annotated[list[HexId], msgspec.Meta(min_length=1, max_length=MAX_READ_BLOBS)]
    # A download (zip or folder), which needs the Download permission; viewing needs View.
    download: bool = False


class LookupRequest(_Wire, frozen=True):
    """Which of these study UID tags already name one of my studies?"""

    uid_tags: Annotated[list[Tag], msgspec.Meta(max_length=1000)]


class LookupResponse(_Wire, frozen=True):
    """The studies found, keyed by the base64 of their tag."""

    studies: list[StudySummary]


class StatsResponse(_Wire, frozen=True):
    """My Account statistics."""

    studies: int
    files: int
    used_bytes: int
    limit_bytes: int
    # Studies of mine shared with someone (or by a link), and studies shared with me.
    shared_studies: int = 0
    received_studies: int = 0

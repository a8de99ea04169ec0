"""Sealing a scanned study on the client: metadata box, per-instance streams, signed manifest.

Instances are read in chunk-sized blocks and sealed as they are read, so memory stays at a few
chunks whatever the size of a file; each instance's size and ciphertext hash are accumulated on
the way and become its manifest entry once the stream is exhausted. Nothing here does I/O over
the network: the upload pipeline sends what these iterators yield.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Final

import msgspec

from securepacs.client.scanned import StudyAttributes
from securepacs.crypto import (
    ManifestEntry,
    StreamSealer,
    StudyKey,
    new_study_id,
    new_study_key,
    open_metadata,
    seal_manifest,
    seal_metadata,
    wrap_study_key,
)
from securepacs.crypto.stream import CHUNK_LOG2_DEFAULT

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from securepacs.client.scanned import Instance, StudyScan
    from securepacs.crypto import AccountKeys

__all__ = ("SealedInstance", "StudyMetadata", "StudySeal", "decode_metadata", "encode_metadata")

METADATA_VERSION: Final = 1
READ_BYTES: Final = 1 << CHUNK_LOG2_DEFAULT


class StudyMetadata(msgspec.Struct, frozen=True, kw_only=True):
    """The plaintext of a metadata box: the worklist fields, and who sent it with what note."""

    version: int = METADATA_VERSION
    attributes: StudyAttributes
    sender_email: str = ""
    message: str = ""
    instance_count: int = 0
    # The manifest version this box was written with: a server that pairs an old manifest with
    # a newer box (or the reverse) is caught by comparing the two.
    manifest_version: int = 1


_METADATA_DECODER: Final = msgspec.msgpack.Decoder(StudyMetadata)


def encode_metadata(metadata: StudyMetadata) -> bytes:
    """The canonical bytes a metadata box seals."""
    return msgspec.msgpack.encode(metadata)


def decode_metadata(plaintext: bytes) -> StudyMetadata:
    """Read an opened metadata box (a newer version is refused, not misread)."""
    metadata = _METADATA_DECODER.decode(plaintext)
    if metadata.version != METADATA_VERSION:
        raise msgspec.ValidationError("unknown metadata version")
    return metadata


class SealedInstance:
    """One file, sealed on demand: iterate :meth:`chunks`, then read :attr:`entry`."""

    def __init__(
        self, study_key: StudyKey, instance: Instance, file_id: bytes | None = None
    ) -> None:
        self.instance = instance
        # A resumed upload passes the file id it used before, and so re-seals the same bytes.
        self._sealer = StreamSealer(study_key, file_id) if file_id else StreamSealer.new(study_key)
        self._entry: ManifestEntry | None = None
        self._plain_size = self._sealed_size = 0

    @property
    def file_id(self) -> bytes:
        """The random id the content key is derived from."""
        return self._sealer.file_id

    def _blocks(self) -> Iterator[bytes]:
        with open(self.instance.path, "rb") as handle:  # noqa: PTH123 -- a path string
            while block := handle.read(READ_BYTES):
                self._plain_size += len(block)
                yield block

    def chunks(self) -> Iterator[bytes]:
        """The sealed stream, header first, read from disk in chunk-sized blocks."""
        digest = hashlib.sha256()
        for piece in self._sealer.seal(self._blocks()):
            digest.update(piece)
            self._sealed_size += len(piece)
            yield piece
        self._entry = self.entry_for(digest.digest())

    def seal_whole(self, plain: bytes | None = None) -> bytes:
        """The whole sealed stream at once, not hashed.

        The caller hashes it (where the platform has a faster digest than this thread) and
        calls :meth:`entry_for`. ``plain`` is the file's content if the caller read it already.
        """
        if plain is None:
            # One read: a file sent whole is at most one part, and in the browser each read of
            # a chosen file is a round trip to the browser process.
            with open(self.instance.path, "rb") as handle:  # noqa: PTH123 -- a path string
                plain = handle.read()
        self._plain_size = len(plain)
        data = b"".join(self._sealer.seal([plain]))
        self._sealed_size = len(data)
        return data

    def entry_for(self, ciphertext_hash: bytes) -> ManifestEntry:
        """The manifest entry of the sealed stream, given its SHA-256."""
        self._entry = ManifestEntry(
            file_id=self.file_id,
            plaintext_size=self._plain_size,
            ciphertext_size=self._sealed_size,
            ciphertext_hash=ciphertext_hash,
            series_uid=self.instance.series_instance_uid,
            instance_uid=self.instance.sop_instance_uid,
        )
        return self._entry

    @property
    def plaintext_size(self) -> int:
        """Bytes read from the file so far (all of them once it is sealed)."""
        return self._plain_size

    @property
    def entry(self) -> ManifestEntry:
        """The manifest entry; available once :meth:`chunks` has been consumed."""
        if self._entry is None:
            raise RuntimeError("seal the instance (consume chunks()) before asking for its entry")
        return self._entry


class StudySeal:
    """Keys and envelopes of one study being uploaded (a new study, or one appended to)."""

    def __init__(
        self,
        owner: AccountKeys,
        *,
        study_key: StudyKey | None = None,
        study_id: bytes | None = None,
    ) -> None:
        self.owner = owner
        self.study_key = study_key or new_study_key()
        self.study_id = study_id or new_study_id()

    def wrapped_key(self) -> bytes:
        """The owner's copy of the study key."""
        return wrap_study_key(self.owner.account_key, self.study_id, self.study_key)

    def metadata(
        self,
        attributes: StudyAttributes,
        *,
        instance_count: int,
        sender_email: str = "",
        message: str = "",
        manifest_version: int = 1,
    ) -> bytes:
        """The sealed metadata box of the study (for ``manifest_version`` of its manifest)."""
        plain = StudyMetadata(
            attributes=attributes,
            sender_email=sender_email,
            message=message,
            instance_count=instance_count,
            manifest_version=manifest_version,
        )
        return seal_metadata(self.study_key, self.study_id, encode_metadata(plain))

    def open_metadata(self, sealed: bytes) -> StudyMetadata:
        """Open a metadata box of this study."""
        return decode_metadata(open_metadata(self.study_key, self.study_id, sealed))

    def instances(self, scan: StudyScan) -> list[SealedInstance]:
        """One sealer per file of the scan."""
        return [
            SealedInstance(self.study_key, instance)
            for members in scan.series.values()
            for instance in members
        ]

    def manifest(self, version: int, entries: Sequence[ManifestEntry]) -> bytes:
        """The manifest, signed by the owner; ``version`` grows with every append."""
        return seal_manifest(self.study_key, self.study_id, version, entries, self.owner)

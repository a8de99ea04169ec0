"""The byte layout of every envelope (protocol.md §2 and the section named on each class).

Each envelope is a msgpack array ``[kind, version, fields...]`` in canonical form. The classes
here are the wire types only; the modules that own a format (``account``, ``study``, ``share``,
``link``) seal and open them. Decoders are built once and reused.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

from securepacs.crypto.kdf import KdfParams

__all__ = (
    "AccountSecretsPlain",
    "GrantEnvelope",
    "KeySlotEnvelope",
    "Kind",
    "LinkEnvelope",
    "ManifestBody",
    "ManifestEntry",
    "ManifestEnvelope",
    "MetadataEnvelope",
    "PublicKeysEnvelope",
    "ShareNoteEnvelope",
    "SignedManifest",
    "StudyKeyWrapEnvelope",
)

Bytes16 = Annotated[bytes, msgspec.Meta(min_length=16, max_length=16)]
Bytes24 = Annotated[bytes, msgspec.Meta(min_length=24, max_length=24)]
Bytes32 = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
Bytes64 = Annotated[bytes, msgspec.Meta(min_length=64, max_length=64)]
UInt32 = Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)]
UInt63 = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
Tagged = Annotated[bytes, msgspec.Meta(min_length=16)]
DicomUid = Annotated[str, msgspec.Meta(max_length=64, pattern=r"^[0-9.]*$")]

# Fits the 64 MiB envelope limit even with 64-character UIDs (about 200 bytes an entry).
MAX_MANIFEST_ENTRIES: Final = 250_000
MAX_METADATA_BYTES: Final = 1024 * 1024
MAX_NOTE_BYTES: Final = 4096


class Kind:
    """Envelope kinds: the first array element of every envelope."""

    PUBLIC_KEYS: Final = 1
    KEY_SLOT: Final = 2
    ACCOUNT_SECRETS: Final = 3
    STUDY_KEY_WRAP: Final = 4
    METADATA: Final = 5
    MANIFEST: Final = 6
    MANIFEST_BODY: Final = 7
    GRANT: Final = 8
    LINK: Final = 9
    SHARE_NOTE: Final = 10


class _Envelope(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    kind: int
    version: int


class PublicKeysEnvelope(_Envelope, frozen=True):
    """§5.1 An account's public keys, the X25519 key signed by the Ed25519 key."""

    x25519: Bytes32
    ed25519: Bytes32
    signature: Bytes64


class AccountSecretsPlain(_Envelope, frozen=True):
    """§5.2 The plaintext inside every key slot: the account key bundle."""

    x25519_secret: Bytes32
    ed25519_seed: Bytes32
    account_key: Bytes32


class KeySlotEnvelope(_Envelope, frozen=True):
    """§5.3 The account bundle wrapped under one unlocking key (password, recovery, passkey)."""

    slot_type: int
    kdf: KdfParams | None
    key_uid: Annotated[bytes, msgspec.Meta(max_length=16)]
    nonce: Bytes24
    ciphertext: Annotated[bytes, msgspec.Meta(min_length=16, max_length=1024)]


class StudyKeyWrapEnvelope(_Envelope, frozen=True):
    """§6.2 A study key wrapped for its owner under the owner's account key."""

    study_id: Bytes16
    nonce: Bytes24
    ciphertext: Annotated[bytes, msgspec.Meta(min_length=48, max_length=48)]


class MetadataEnvelope(_Envelope, frozen=True):
    """§6.3 Study attributes (the worklist fields), encrypted under the study's metadata key."""

    study_id: Bytes16
    nonce: Bytes24
    ciphertext: Annotated[bytes, msgspec.Meta(min_length=16, max_length=MAX_METADATA_BYTES + 16)]


class ManifestEntry(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """§6.4 One instance of a study: where its ciphertext is and what it must hash to."""

    file_id: Bytes16
    plaintext_size: UInt63
    ciphertext_size: UInt63
    ciphertext_hash: Bytes32
    series_uid: DicomUid
    instance_uid: DicomUid


class ManifestBody(_Envelope, frozen=True):
    """§6.4 The signed part of a manifest."""

    study_id: Bytes16
    manifest_version: Annotated[int, msgspec.Meta(ge=1, le=2**32 - 1)]
    signer: Bytes32
    entries: Annotated[list[ManifestEntry], msgspec.Meta(max_length=MAX_MANIFEST_ENTRIES)]


class SignedManifest(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """§6.4 The plaintext of a manifest envelope: the encoded body and its signature."""

    body: bytes
    signature: Bytes64


class ManifestEnvelope(_Envelope, frozen=True):
    """§6.4 The manifest body and its uploader signature, encrypted under the manifest key."""

    study_id: Bytes16
    manifest_version: Annotated[int, msgspec.Meta(ge=1, le=2**32 - 1)]
    nonce: Bytes24
    ciphertext: Tagged


class GrantEnvelope(_Envelope, frozen=True):
    """§8 A study key sealed to a recipient's X25519 key and signed by the granter."""

    study_id: Bytes16
    recipient: Bytes32
    granter: Bytes32
    permission: int
    expires_at: UInt63
    ephemeral: Bytes32
    nonce: Bytes24
    ciphertext: Annotated[bytes, msgspec.Meta(min_length=48, max_length=48)]
    signature: Bytes64


class ShareNoteEnvelope(_Envelope, frozen=True):
    """§8.6 The sharer's message to one share, encrypted under a key derived from the study key."""

    study_id: Bytes16
    share_id: Bytes16
    nonce: Bytes24
    ciphertext: Annotated[bytes, msgspec.Meta(min_length=16, max_length=MAX_NOTE_BYTES + 16)]


class LinkEnvelope(_Envelope, frozen=True):
    """§9 A study key wrapped under a key derived from an anonymous link's secret."""

    link_id: Bytes16
    study_id: Bytes16
    permission: int
    expires_at: UInt63
    creator: Bytes32
    nonce: Bytes24
    ciphertext: Annotated[bytes, msgspec.Meta(min_length=48, max_length=48)]
    signature: Bytes64

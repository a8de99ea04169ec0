"""Study keys and what they protect besides pixels: metadata and the signed manifest.

protocol.md §6. Each study has a fresh random key. The owner keeps it wrapped under the account
key; the worklist attributes are sealed in a metadata box; the list of instances (file ids,
sizes, ciphertext hashes, series and instance UIDs) is signed by the uploader, then encrypted.
Everything is bound to the study id, so the server cannot move a box from one study to another.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Final

import msgspec

from securepacs.crypto import _labels
from securepacs.crypto._backend import get_backend
from securepacs.crypto._canonical import (
    FORMAT_VERSION,
    decode,
    encode,
    labelled,
    tuple_bytes,
)
from securepacs.crypto._random import SYSTEM_RANDOM, Randomness
from securepacs.crypto.envelope import (
    MAX_METADATA_BYTES,
    Kind,
    ManifestBody,
    ManifestEntry,
    ManifestEnvelope,
    MetadataEnvelope,
    SignedManifest,
    StudyKeyWrapEnvelope,
)
from securepacs.crypto.errors import (
    AuthenticationFailed,
    MalformedEnvelope,
    UnsupportedVersion,
)
from securepacs.crypto.kdf import derive_key_bytes
from securepacs.crypto.keys import KEY_BYTES, AccountKey, StudyKey

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from securepacs.crypto.account import AccountKeys

__all__ = (
    "STUDY_ID_BYTES",
    "Manifest",
    "ManifestEntry",
    "ciphertext_hash",
    "new_study_id",
    "new_study_key",
    "open_manifest",
    "open_metadata",
    "seal_manifest",
    "seal_metadata",
    "study_uid_tag",
    "unwrap_study_key",
    "wrap_study_key",
)

STUDY_ID_BYTES: Final = 16
NONCE_BYTES: Final = 24

_WRAP_DECODER: Final = msgspec.msgpack.Decoder(StudyKeyWrapEnvelope)
_METADATA_DECODER: Final = msgspec.msgpack.Decoder(MetadataEnvelope)
_MANIFEST_DECODER: Final = msgspec.msgpack.Decoder(ManifestEnvelope)
_BODY_DECODER: Final = msgspec.msgpack.Decoder(ManifestBody)
_DICOM_UID: Final = re.compile(r"[0-9.]{1,64}")
_SIGNED_DECODER: Final = msgspec.msgpack.Decoder(SignedManifest)


class Manifest(msgspec.Struct, frozen=True):
    """An opened, verified manifest: who signed it and which instances the study holds."""

    study_id: bytes
    manifest_version: int
    signer: bytes
    entries: tuple[ManifestEntry, ...]


def new_study_key(rng: Randomness = SYSTEM_RANDOM) -> StudyKey:
    """A fresh random study key (never reused across studies)."""
    return StudyKey(rng.take(KEY_BYTES))


def new_study_id(rng: Randomness = SYSTEM_RANDOM) -> bytes:
    """A fresh random 16-byte study id; the server uses it as the study's opaque name."""
    return rng.take(STUDY_ID_BYTES)


def _check_study_id(study_id: bytes) -> None:
    if len(study_id) != STUDY_ID_BYTES:
        raise ValueError("study ids are 16 bytes")


def study_uid_tag(account_key: AccountKey, study_instance_uid: str) -> bytes:
    """A keyed hash of a StudyInstanceUID: lets the owner find a study again, blind to the server.

    protocol.md §6.5. Only the holder of the account key can compute or test a tag.
    """
    # DICOM pads UI values with NUL (and some writers with spaces) to an even length.
    uid = study_instance_uid.rstrip("\x00 ")
    if not _DICOM_UID.fullmatch(uid):
        raise ValueError("a StudyInstanceUID is 1 to 64 digits and dots")
    return derive_key_bytes(account_key._material, _labels.STUDY_UID_TAG, uid.encode("ascii"))


def ciphertext_hash(sealed: bytes | Sequence[bytes]) -> bytes:
    """SHA-256 of a whole sealed stream, as recorded in the manifest (protocol.md §6.4).

    The same digest is the blob's RFC 9530 ``Content-Digest`` when it goes up in one part.
    """
    digest = hashlib.sha256()
    for piece in (sealed,) if isinstance(sealed, bytes) else sealed:
        digest.update(piece)
    return digest.digest()


def _seal(key: bytes, plaintext: bytes, ad: bytes, rng: Randomness) -> tuple[bytes, bytes]:
    nonce = rng.take(NONCE_BYTES)
    return nonce, get_backend().aead_xchacha20poly1305_ietf_encrypt(plaintext, ad, nonce, key)


def _owner_wrap_key(account_key: AccountKey) -> bytes:
    # The account key also keys the study UID tags; each use gets its own derived key.
    return derive_key_bytes(account_key._material, _labels.OWNER_WRAP_KEY)


def wrap_study_key(
    account_key: AccountKey,
    study_id: bytes,
    study_key: StudyKey,
    rng: Randomness = SYSTEM_RANDOM,
) -> bytes:
    """The owner's copy of a study key, under the account key. protocol.md §6.2."""
    _check_study_id(study_id)
    ad = labelled(
        _labels.STUDY_KEY_WRAP_AD,
        tuple_bytes(Kind.STUDY_KEY_WRAP, FORMAT_VERSION, study_id),
    )
    nonce, ciphertext = _seal(_owner_wrap_key(account_key), study_key._material, ad, rng)
    return encode(
        StudyKeyWrapEnvelope(
            kind=Kind.STUDY_KEY_WRAP,
            version=FORMAT_VERSION,
            study_id=study_id,
            nonce=nonce,
            ciphertext=ciphertext,
        )
    )


def unwrap_study_key(account_key: AccountKey, study_id: bytes, wrapped: bytes) -> StudyKey:
    """Open the owner's copy of a study key for the study ``study_id``.

    Raises:
        MalformedEnvelope, UnsupportedVersion: not a v1 wrapped study key.
        AuthenticationFailed: wrong account, wrong study, or tampered.
    """
    env = decode(wrapped, _WRAP_DECODER, Kind.STUDY_KEY_WRAP)
    if env.study_id != study_id:
        raise AuthenticationFailed
    ad = labelled(
        _labels.STUDY_KEY_WRAP_AD,
        tuple_bytes(Kind.STUDY_KEY_WRAP, FORMAT_VERSION, study_id),
    )
    plain = get_backend().aead_xchacha20poly1305_ietf_decrypt(
        env.ciphertext, ad, env.nonce, _owner_wrap_key(account_key)
    )
    return StudyKey(plain)


def seal_metadata(
    study_key: StudyKey,
    study_id: bytes,
    plaintext: bytes,
    rng: Randomness = SYSTEM_RANDOM,
) -> bytes:
    """Encrypt the study's attributes (already serialised by the client). protocol.md §6.3."""
    _check_study_id(study_id)
    if len(plaintext) > MAX_METADATA_BYTES:
        raise ValueError("metadata is limited to 1 MiB")
    key = derive_key_bytes(study_key._material, _labels.METADATA_KEY)
    ad = labelled(_labels.METADATA_AD, tuple_bytes(Kind.METADATA, FORMAT_VERSION, study_id))
    nonce, ciphertext = _seal(key, plaintext, ad, rng)
    return encode(
        MetadataEnvelope(
            kind=Kind.METADATA,
            version=FORMAT_VERSION,
            study_id=study_id,
            nonce=nonce,
            ciphertext=ciphertext,
        )
    )


def open_metadata(study_key: StudyKey, study_id: bytes, sealed: bytes) -> bytes:
    """Decrypt a metadata box of the study ``study_id``.

    Raises:
        MalformedEnvelope, UnsupportedVersion: not a v1 metadata box.
        AuthenticationFailed: wrong study key, another study's box, or tampered.
    """
    env = decode(sealed, _METADATA_DECODER, Kind.METADATA)
    if env.study_id != study_id:
        raise AuthenticationFailed
    key = derive_key_bytes(study_key._material, _labels.METADATA_KEY)
    ad = labelled(_labels.METADATA_AD, tuple_bytes(Kind.METADATA, FORMAT_VERSION, study_id))
    return get_backend().aead_xchacha20poly1305_ietf_decrypt(env.ciphertext, ad, env.nonce, key)


def _manifest_ad(study_id: bytes, manifest_version: int) -> bytes:
    header = tuple_bytes(Kind.MANIFEST, FORMAT_VERSION, study_id, manifest_version)
    return labelled(_labels.MANIFEST_AD, header)


def seal_manifest(
    study_key: StudyKey,
    study_id: bytes,
    manifest_version: int,
    entries: Sequence[ManifestEntry],
    signer: AccountKeys,
    rng: Randomness = SYSTEM_RANDOM,
) -> bytes:
    """Sign the instance list as ``signer``, then encrypt it under the study. protocol.md §6.4.

    ``manifest_version`` grows by one each time instances are added, so an old manifest is
    recognisable as old.
    """
    _check_study_id(study_id)
    body = encode(
        ManifestBody(
            kind=Kind.MANIFEST_BODY,
            version=FORMAT_VERSION,
            study_id=study_id,
            manifest_version=manifest_version,
            signer=signer.public.ed25519,
            entries=list(entries),
        )
    )
    # Structs are not validated on construction; never write what every reader would refuse.
    try:
        decode(body, _BODY_DECODER, Kind.MANIFEST_BODY)
    except MalformedEnvelope:
        raise ValueError("manifest version or entries out of range") from None
    signature = signer.sign(_labels.MANIFEST_SIGNATURE, body)
    key = derive_key_bytes(study_key._material, _labels.MANIFEST_KEY)
    nonce, ciphertext = _seal(
        key,
        encode(SignedManifest(body=body, signature=signature)),
        _manifest_ad(study_id, manifest_version),
        rng,
    )
    return encode(
        ManifestEnvelope(
            kind=Kind.MANIFEST,
            version=FORMAT_VERSION,
            study_id=study_id,
            manifest_version=manifest_version,
            nonce=nonce,
            ciphertext=ciphertext,
        )
    )


def open_manifest(
    study_key: StudyKey,
    study_id: bytes,
    sealed: bytes,
    trusted_signers: Collection[bytes],
) -> Manifest:
    """Decrypt a manifest and verify that one of ``trusted_signers`` (Ed25519 keys) signed it.

    Raises:
        MalformedEnvelope, UnsupportedVersion: not a v1 manifest.
        AuthenticationFailed: wrong key, another study's manifest, an untrusted or bad signature.
    """
    env = decode(sealed, _MANIFEST_DECODER, Kind.MANIFEST)
    if env.study_id != study_id:
        raise AuthenticationFailed
    key = derive_key_bytes(study_key._material, _labels.MANIFEST_KEY)
    plain = get_backend().aead_xchacha20poly1305_ietf_decrypt(
        env.ciphertext, _manifest_ad(study_id, env.manifest_version), env.nonce, key
    )
    try:
        signed = _SIGNED_DECODER.decode(plain)
        body_bytes, signature = signed.body, signed.signature
        body = decode(body_bytes, _BODY_DECODER, Kind.MANIFEST_BODY)
    except (msgspec.DecodeError, RecursionError, MalformedEnvelope, UnsupportedVersion):
        raise MalformedEnvelope from None
    if encode(signed) != plain:
        raise MalformedEnvelope
    if body.signer not in trusted_signers:
        raise AuthenticationFailed
    get_backend().sign_verify_detached(
        signature, labelled(_labels.MANIFEST_SIGNATURE, body_bytes), body.signer
    )
    if body.study_id != study_id or body.manifest_version != env.manifest_version:
        raise AuthenticationFailed
    return Manifest(
        study_id=body.study_id,
        manifest_version=body.manifest_version,
        signer=body.signer,
        entries=tuple(body.entries),
    )

"""Grants: a study key sealed to another account's X25519 key, signed by the granter.

protocol.md §8. The sealing is X25519 with a fresh ephemeral key, a keyed-BLAKE2b wrap key and
XChaCha20-Poly1305 whose associated data is the grant's whole header, so the permission, expiry,
study and both parties are bound to the ciphertext as well as to the granter's signature. The
server stores grants and enforces expiry and permission (ZK-5: server-enforced); it can never
open them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import msgspec

from securepacs.crypto import _labels
from securepacs.crypto._backend import get_backend
from securepacs.crypto._canonical import (
    FORMAT_VERSION,
    decode,
    encode,
)
from securepacs.crypto._random import SYSTEM_RANDOM, Randomness
from securepacs.crypto._signed_wrap import Header, open_wrapped, seal_wrapped, verify_wrapped
from securepacs.crypto.envelope import GrantEnvelope, Kind
from securepacs.crypto.errors import MalformedEnvelope, NoMatchingKey
from securepacs.crypto.kdf import derive_key_bytes
from securepacs.crypto.keys import KEY_BYTES, StudyKey

if TYPE_CHECKING:
    from securepacs.crypto.account import AccountKeys, PublicKeys

__all__ = (
    "PERMISSIONS",
    "PERMISSION_ADMIN",
    "PERMISSION_DOWNLOAD",
    "PERMISSION_EDIT",
    "PERMISSION_VIEW",
    "OpenedGrant",
    "check_terms",
    "grant_info",
    "open_grant",
    "seal_grant",
)

PERMISSION_VIEW: Final = 1
PERMISSION_DOWNLOAD: Final = 2
PERMISSION_EDIT: Final = 3
PERMISSION_ADMIN: Final = 4
PERMISSIONS: Final = {
    PERMISSION_VIEW: "view",
    PERMISSION_DOWNLOAD: "download",
    PERMISSION_EDIT: "edit",
    PERMISSION_ADMIN: "admin",
}
_DECODER: Final = msgspec.msgpack.Decoder(GrantEnvelope)


class OpenedGrant:
    """A verified grant: the study key, what it allows, and who granted it."""

    __slots__ = ("expires_at", "granter", "permission", "study_id", "study_key")

    def __init__(
        self,
        study_id: bytes,
        study_key: StudyKey,
        permission: int,
        expires_at: int,
        granter: bytes,
    ) -> None:
        self.study_id: Final = study_id
        self.study_key: Final = study_key
        self.permission: Final = permission
        self.expires_at: Final = expires_at
        self.granter: Final = granter

    def __repr__(self) -> str:
        return (
            f"OpenedGrant(study_id={self.study_id.hex()}, "
            f"permission={PERMISSIONS[self.permission]}, expires_at={self.expires_at})"
        )


def _header(env: GrantEnvelope) -> Header:
    fields = (env.study_id, env.recipient, env.granter, env.permission, env.expires_at)
    return (Kind.GRANT, FORMAT_VERSION, *fields, env.ephemeral)


def _wrap_key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    return derive_key_bytes(shared, _labels.GRANT_WRAP_KEY, ephemeral + recipient)


def check_terms(study_id: bytes, permission: int, expires_at: int) -> None:
    """Argument checks shared by grants and links; misuse raises ``ValueError``."""
    if len(study_id) != 16:
        raise ValueError("study ids are 16 bytes")
    if permission not in PERMISSIONS:
        raise ValueError("unknown permission")
    if not 0 <= expires_at < 2**63:
        raise ValueError("expires_at is seconds since the epoch, 0 for never")


def seal_grant(
    granter: AccountKeys,
    recipient: PublicKeys,
    study_id: bytes,
    study_key: StudyKey,
    permission: int,
    expires_at: int,
    rng: Randomness = SYSTEM_RANDOM,
) -> bytes:
    """Seal ``study_key`` to ``recipient`` and sign the grant as ``granter``. protocol.md §8.

    ``recipient`` must come from :func:`open_public_keys` (self-signature checked) and its
    fingerprint should have been compared by a person (ZK-4).
    """
    check_terms(study_id, permission, expires_at)
    backend = get_backend()
    ephemeral_secret = rng.take(KEY_BYTES)
    ephemeral = backend.scalarmult_base(ephemeral_secret)
    shared = backend.scalarmult(ephemeral_secret, recipient.x25519)
    unsigned = GrantEnvelope(
        kind=Kind.GRANT,
        version=FORMAT_VERSION,
        study_id=study_id,
        recipient=recipient.x25519,
        granter=granter.public.ed25519,
        permission=permission,
        expires_at=expires_at,
        ephemeral=ephemeral,
        nonce=b"",
        ciphertext=b"",
        signature=b"",
    )
    nonce, ciphertext, signature = seal_wrapped(
        granter,
        (_labels.GRANT_AD, _labels.GRANT_SIGNATURE),
        _header(unsigned),
        study_key,
        _wrap_key(shared, ephemeral, recipient.x25519),
        rng,
    )
    return encode(
        msgspec.structs.replace(unsigned, nonce=nonce, ciphertext=ciphertext, signature=signature)
    )


def grant_info(data: bytes) -> GrantEnvelope:
    """Decode a grant and verify the granter's signature, without any secret key.

    The server uses this to check what it stores; clients use :func:`open_grant`.

    Raises:
        MalformedEnvelope, UnsupportedVersion: not a canonical v1 grant, or unknown permission.
        AuthenticationFailed: the signature does not verify.
    """
    env = decode(data, _DECODER, Kind.GRANT)
    if env.permission not in PERMISSIONS:
        raise MalformedEnvelope
    verify_wrapped(
        _labels.GRANT_SIGNATURE, _header(env), env.nonce, env.ciphertext, env.signature, env.granter
    )
    return env


def open_grant(data: bytes, recipient: AccountKeys) -> OpenedGrant:
    """Verify a grant and unseal its study key as ``recipient``.

    Raises:
        MalformedEnvelope, UnsupportedVersion: not a canonical v1 grant.
        AuthenticationFailed: bad signature, low-order ephemeral key, or tampered ciphertext.
        NoMatchingKey: the grant is addressed to another account.
    """
    env = grant_info(data)
    if env.recipient != recipient.public.x25519:
        raise NoMatchingKey
    shared = recipient.agree(env.ephemeral)
    study_key = open_wrapped(
        _labels.GRANT_AD,
        _header(env),
        env.nonce,
        env.ciphertext,
        _wrap_key(shared, env.ephemeral, env.recipient),
    )
    return OpenedGrant(env.study_id, study_key, env.permission, env.expires_at, env.granter)

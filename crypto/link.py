"""Anonymous links: a study key wrapped under a secret that lives only in the URL fragment.

protocol.md §9. The fragment carries a 256-bit link secret. From it (and, when set, from a
link password stretched with Argon2id under a salt derived from the secret) come two
independent keys: a wrap key that opens the link envelope, and an access key that the
recipient's client presents to the server. The server stores only a hash of the access key
(the verifier), so it can check possession without learning anything that opens the study.
"""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING, Final, NoReturn

import msgspec

from securepacs.crypto import _labels
from securepacs.crypto._canonical import (
    FORMAT_VERSION,
    decode,
    encode,
    labelled,
)
from securepacs.crypto._random import SYSTEM_RANDOM, Randomness
from securepacs.crypto._signed_wrap import Header, open_wrapped, seal_wrapped, verify_wrapped
from securepacs.crypto.envelope import Kind, LinkEnvelope
from securepacs.crypto.errors import (
    AuthenticationFailed,
    MalformedEnvelope,
    UnsupportedVersion,
)
from securepacs.crypto.kdf import (
    ARGON2_MEMORY_KIB,
    ARGON2_OPSLIMIT,
    ARGON2ID,
    SALT_BYTES,
    KdfParams,
    derive_key_bytes,
    stretch_password,
)
from securepacs.crypto.keys import KEY_BYTES, LinkSecret, StudyKey
from securepacs.crypto.share import PERMISSIONS, check_terms

if TYPE_CHECKING:
    from securepacs.crypto.account import AccountKeys

__all__ = (
    "LINK_ID_BYTES",
    "LinkAccess",
    "OpenedLink",
    "encode_fragment",
    "link_access",
    "link_info",
    "link_verifier",
    "new_link_id",
    "new_link_secret",
    "open_link",
    "parse_fragment",
    "seal_link",
)

LINK_ID_BYTES: Final = 16
FRAGMENT_VERSION: Final = 1
FLAG_PASSWORD: Final = 0x01
_FRAGMENT_CHARS: Final = 46
_BASE64URL: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_DECODER: Final = msgspec.msgpack.Decoder(LinkEnvelope)
_MODIFIED_LINK: Final = (
    "This link is incomplete or was changed. Copy the whole link from the message you "
    "received, or ask the sender for a new one."
)


class LinkAccess:
    """What a link secret (and password) yield: the wrap key and the server access proof."""

    __slots__ = ("_wrap_key", "access_key")

    def __init__(self, wrap_key: bytes, access_key: bytes) -> None:
        self._wrap_key: Final = wrap_key
        self.access_key: Final = access_key

    def __repr__(self) -> str:
        return "<LinkAccess redacted>"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        # Both attributes are secrets kept as bytes; refuse to be written to a cache or queue.
        raise TypeError("LinkAccess cannot be pickled")

    @property
    def verifier(self) -> bytes:
        """What the server stores: a hash of the access key."""
        return link_verifier(self.access_key)


class OpenedLink:
    """A verified link envelope: the study key, its terms, and who created the link."""

    __slots__ = ("creator", "expires_at", "permission", "study_id", "study_key")

    def __init__(
        self,
        study_id: bytes,
        study_key: StudyKey,
        permission: int,
        expires_at: int,
        creator: bytes,
    ) -> None:
        self.study_id: Final = study_id
        self.study_key: Final = study_key
        self.permission: Final = permission
        self.expires_at: Final = expires_at
        self.creator: Final = creator

    def __repr__(self) -> str:
        return f"OpenedLink(study_id={self.study_id.hex()}, permission={self.permission})"


def new_link_secret(rng: Randomness = SYSTEM_RANDOM) -> LinkSecret:
    """256 fresh random bits."""
    return LinkSecret(rng.take(KEY_BYTES))


def new_link_id(rng: Randomness = SYSTEM_RANDOM) -> bytes:
    """A fresh random 16-byte link id (the public part of the URL path)."""
    return rng.take(LINK_ID_BYTES)


def encode_fragment(secret: LinkSecret, *, password_required: bool) -> str:
    """The URL fragment: base64url, unpadded, of ``version || flags || secret`` (46 chars)."""
    flags = FLAG_PASSWORD if password_required else 0
    raw = bytes((FRAGMENT_VERSION, flags)) + secret._material
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def parse_fragment(fragment: str) -> tuple[LinkSecret, bool]:
    """Read a URL fragment (with or without the leading ``#``): (secret, password required).

    Raises:
        MalformedEnvelope: truncated or edited fragment, in words that tell the person what to do.
        UnsupportedVersion: a link made by a newer SecurePACS.
    """
    text = fragment.removeprefix("#")
    if len(text) != _FRAGMENT_CHARS or any(c not in _BASE64URL for c in text):
        raise MalformedEnvelope(_MODIFIED_LINK)
    raw = base64.urlsafe_b64decode(text + "==")
    # 46 characters carry 276 bits for 272: the last character's 4 spare bits must be zero.
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != text:
        raise MalformedEnvelope(_MODIFIED_LINK)
    if raw[0] != FRAGMENT_VERSION:
        raise UnsupportedVersion
    if raw[1] not in (0, FLAG_PASSWORD):
        raise MalformedEnvelope(_MODIFIED_LINK)
    return LinkSecret(raw[2:]), raw[1] == FLAG_PASSWORD


def link_password_params(secret: LinkSecret) -> KdfParams:
    """Argon2id parameters of a link password: v1 defaults, salt derived from the secret."""
    salt = derive_key_bytes(secret._material, _labels.LINK_PASSWORD_SALT)[:SALT_BYTES]
    return KdfParams(
        alg=ARGON2ID,
        opslimit=ARGON2_OPSLIMIT,
        memlimit_kib=ARGON2_MEMORY_KIB,
        salt=salt,
    )


def link_access(secret: LinkSecret, password: str | None) -> LinkAccess:
    """Derive the wrap key and access key of a link. protocol.md §9.2."""
    context = b""
    if password is not None:
        context = stretch_password(password, link_password_params(secret))
    root = derive_key_bytes(secret._material, _labels.LINK_ROOT, context)
    return LinkAccess(
        derive_key_bytes(root, _labels.LINK_WRAP_KEY),
        derive_key_bytes(root, _labels.LINK_ACCESS_KEY),
    )


def link_verifier(access_key: bytes) -> bytes:
    """BLAKE2b-256 of the labelled access key: what the server stores and compares against."""
    if len(access_key) != KEY_BYTES:
        raise ValueError("access keys are 32 bytes")
    return hashlib.blake2b(labelled(_labels.LINK_VERIFIER, access_key), digest_size=32).digest()


def _header(env: LinkEnvelope) -> Header:
    fields = (env.link_id, env.study_id, env.permission, env.expires_at, env.creator)
    return (Kind.LINK, FORMAT_VERSION, *fields)


def seal_link(
    creator: AccountKeys,
    access: LinkAccess,
    link_id: bytes,
    study_id: bytes,
    study_key: StudyKey,
    permission: int,
    expires_at: int,
    rng: Randomness = SYSTEM_RANDOM,
) -> bytes:
    """Wrap ``study_key`` for a link and sign the envelope as ``creator``. protocol.md §9.3."""
    if len(link_id) != LINK_ID_BYTES:
        raise ValueError("link ids are 16 bytes")
    check_terms(study_id, permission, expires_at)
    unsigned = LinkEnvelope(
        kind=Kind.LINK,
        version=FORMAT_VERSION,
        link_id=link_id,
        study_id=study_id,
        permission=permission,
        expires_at=expires_at,
        creator=creator.public.ed25519,
        nonce=b"",
        ciphertext=b"",
        signature=b"",
    )
    nonce, ciphertext, signature = seal_wrapped(
        creator,
        (_labels.LINK_AD, _labels.LINK_SIGNATURE),
        _header(unsigned),
        study_key,
        access._wrap_key,
        rng,
    )
    return encode(
        msgspec.structs.replace(unsigned, nonce=nonce, ciphertext=ciphertext, signature=signature)
    )


def link_info(data: bytes) -> LinkEnvelope:
    """Decode a link envelope and verify the creator's signature, without any secret.

    The server uses this to check what it stores; recipients use :func:`open_link`.

    Raises:
        MalformedEnvelope, UnsupportedVersion: not a canonical v1 link, or unknown permission.
        AuthenticationFailed: the signature does not verify.
    """
    env = decode(data, _DECODER, Kind.LINK)
    if env.permission not in PERMISSIONS:
        raise MalformedEnvelope
    verify_wrapped(
        _labels.LINK_SIGNATURE, _header(env), env.nonce, env.ciphertext, env.signature, env.creator
    )
    return env


def open_link(data: bytes, link_id: bytes, access: LinkAccess) -> OpenedLink:
    """Verify a link envelope and unwrap its study key.

    Raises:
        MalformedEnvelope, UnsupportedVersion: not a canonical v1 link envelope.
        AuthenticationFailed: bad signature, another link's envelope, wrong secret or password.
    """
    env = link_info(data)
    if env.link_id != link_id:
        raise AuthenticationFailed
    study_key = open_wrapped(
        _labels.LINK_AD, _header(env), env.nonce, env.ciphertext, access._wrap_key
    )
    return OpenedLink(env.study_id, study_key, env.permission, env.expires_at, env.creator)

"""Key derivation: Argon2id for passwords, keyed BLAKE2b for every subkey (protocol.md §4).

Argon2id parameters are not configuration: they travel inside the envelope that uses them, so
they can be raised later without breaking old accounts, and a client refuses parameters below
the floor of this protocol version (a server that offers weak ones is attacking the password).
"""

from __future__ import annotations

import hashlib
import unicodedata
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Final

import msgspec

from securepacs.crypto import _labels
from securepacs.crypto._backend import get_backend
from securepacs.crypto._random import SYSTEM_RANDOM, Randomness
from securepacs.crypto.errors import ParametersRejected, UnsupportedVersion
from securepacs.crypto.keys import KEY_BYTES, AuthKey, PasswordKek

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = (
    "ARGON2ID",
    "ARGON2_MAX_MEMORY_KIB",
    "ARGON2_MAX_OPSLIMIT",
    "ARGON2_MEMORY_KIB",
    "ARGON2_OPSLIMIT",
    "SALT_BYTES",
    "KdfParams",
    "PasswordKeys",
    "derive_key_bytes",
    "derive_password_keys",
    "insecure_kdf_floor_for_tests",
    "new_kdf_params",
    "stretch_password",
)

ARGON2ID: Final = 1
SALT_BYTES: Final = 16
ARGON2_MEMORY_KIB: Final = 64 * 1024
ARGON2_OPSLIMIT: Final = 3
# The ceiling stops a server from exhausting a phone or a wasm32 heap (4 GiB at most).
ARGON2_MAX_MEMORY_KIB: Final = 512 * 1024
ARGON2_MAX_OPSLIMIT: Final = 16
PASSWORD_MAX_BYTES: Final = 4096

# libsodium's own lower bounds for Argon2id; the test hook can go no lower than these.
_LIBSODIUM_MIN_MEMORY_KIB: Final = 8
_LIBSODIUM_MIN_OPSLIMIT: Final = 1


class KdfParams(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """Argon2id parameters and salt, as stored per account and per envelope."""

    alg: int
    opslimit: Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)]
    memlimit_kib: Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)]
    salt: Annotated[bytes, msgspec.Meta(min_length=SALT_BYTES, max_length=SALT_BYTES)]


class PasswordKeys:
    """The two independent keys a password yields: one for the server, one for the key slot."""

    __slots__ = ("auth_key", "kek")

    def __init__(self, auth_key: AuthKey, kek: PasswordKek) -> None:
        self.auth_key: Final = auth_key
        self.kek: Final = kek

    def __repr__(self) -> str:
        return "<PasswordKeys redacted>"


class _Floor:
    """The minimum Argon2id cost this process accepts; lowered only by the test hook."""

    opslimit = ARGON2_OPSLIMIT
    memlimit_kib = ARGON2_MEMORY_KIB


@contextmanager
def insecure_kdf_floor_for_tests(
    *,
    opslimit: int = _LIBSODIUM_MIN_OPSLIMIT,
    memlimit_kib: int = _LIBSODIUM_MIN_MEMORY_KIB,
) -> Iterator[None]:
    """Accept cheap Argon2id parameters inside this block. Tests only; never used by products.

    The name is deliberately alarming: nothing in the product imports it, and a test checks that.
    """
    saved = (_Floor.opslimit, _Floor.memlimit_kib)
    _Floor.opslimit = max(opslimit, _LIBSODIUM_MIN_OPSLIMIT)
    _Floor.memlimit_kib = max(memlimit_kib, _LIBSODIUM_MIN_MEMORY_KIB)
    try:
        yield
    finally:
        _Floor.opslimit, _Floor.memlimit_kib = saved


def check_kdf_params(params: KdfParams) -> None:
    """Reject parameters this version cannot use or will not accept.

    Raises:
        UnsupportedVersion: an algorithm other than Argon2id.
        ParametersRejected: cost below the floor (a downgrade) or above the ceiling (a DoS).
    """
    if params.alg != ARGON2ID:
        raise UnsupportedVersion
    if params.opslimit < _Floor.opslimit or params.memlimit_kib < _Floor.memlimit_kib:
        raise ParametersRejected
    if params.opslimit > ARGON2_MAX_OPSLIMIT or params.memlimit_kib > ARGON2_MAX_MEMORY_KIB:
        raise ParametersRejected


def new_kdf_params(
    rng: Randomness = SYSTEM_RANDOM,
    *,
    opslimit: int = ARGON2_OPSLIMIT,
    memlimit_kib: int = ARGON2_MEMORY_KIB,
) -> KdfParams:
    """Fresh parameters with a random salt, checked against the floor."""
    params = KdfParams(
        alg=ARGON2ID,
        opslimit=opslimit,
        memlimit_kib=memlimit_kib,
        salt=rng.take(SALT_BYTES),
    )
    check_kdf_params(params)
    return params


def encode_password(password: str) -> bytes:
    """NFC-normalise and UTF-8 encode, so the same password typed anywhere gives the same bytes."""
    if not isinstance(password, str):
        raise TypeError("password must be str")
    if not password:
        raise ValueError("password must not be empty")
    data = unicodedata.normalize("NFC", password).encode("utf-8")
    if len(data) > PASSWORD_MAX_BYTES:
        raise ValueError(f"password must be at most {PASSWORD_MAX_BYTES} bytes")
    return data


def stretch_password(password: str, params: KdfParams) -> bytes:
    """Argon2id(password) -> 32-byte root. Raises like :func:`check_kdf_params`."""
    check_kdf_params(params)
    return get_backend().pwhash_argon2id(
        KEY_BYTES,
        encode_password(password),
        params.salt,
        params.opslimit,
        params.memlimit_kib * 1024,
    )


def derive_key_bytes(key: bytes, label: str, context: bytes = b"") -> bytes:
    """Subkey derivation: BLAKE2b-256 keyed with ``key`` over ``len(label) || label || context``.

    Keyed BLAKE2b is a PRF; the one-byte length prefix keeps label and context apart.
    """
    label_bytes = label.encode("ascii")
    return hashlib.blake2b(
        bytes((len(label_bytes),)) + label_bytes + context,
        digest_size=KEY_BYTES,
        key=key,
    ).digest()


def derive_password_keys(password: str, params: KdfParams) -> PasswordKeys:
    """Password -> Argon2id -> (authentication key, key-encryption key). protocol.md §4.1.

    The two subkeys are independent: knowing the authentication key (the server does, at
    login) reveals nothing about the key-encryption key.

    Raises:
        UnsupportedVersion, ParametersRejected: see :func:`check_kdf_params`.
    """
    root = stretch_password(password, params)
    return PasswordKeys(
        AuthKey(derive_key_bytes(root, _labels.AUTH_KEY)),
        PasswordKek(derive_key_bytes(root, _labels.PASSWORD_KEK)),
    )

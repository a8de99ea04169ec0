"""One opaque class per key role (protocol.md §3).

A key never appears as bare ``bytes`` in a public signature. Each class keeps its material in a
private slot, redacts ``repr`` and ``str``, compares in constant time and refuses to be pickled,
so a key cannot end up in a log line, an exception message or a cache by accident.
"""

from __future__ import annotations

import hmac
from typing import ClassVar, Final, NoReturn

__all__ = (
    "KEY_BYTES",
    "AccountKey",
    "AuthKey",
    "ContentKey",
    "LinkSecret",
    "PasskeyPrfOutput",
    "PasswordKek",
    "RecoveryKey",
    "StudyKey",
    "WrapKey",
)

KEY_BYTES: Final = 32


class _SecretKey:
    """A 32-byte secret with a role; the role is the class."""

    __slots__ = ("_material",)
    _role: ClassVar[str] = "key"

    def __init__(self, material: bytes) -> None:
        if not isinstance(material, bytes):
            raise TypeError(f"{type(self).__name__} takes bytes")
        if len(material) != KEY_BYTES:
            raise ValueError(f"{type(self).__name__} must be {KEY_BYTES} bytes")
        self._material: Final = material

    def __repr__(self) -> str:
        return f"<{type(self).__name__} redacted>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _SecretKey)  # noqa: S101 -- narrows for mypy only
        return hmac.compare_digest(self._material, other._material)

    def __hash__(self) -> int:
        # Hashing would leak a function of the key into dict internals; keys are not dict keys.
        raise TypeError(f"{type(self).__name__} is not hashable")

    def __reduce__(self) -> NoReturn:
        raise TypeError(f"{type(self).__name__} cannot be pickled")


class AuthKey(_SecretKey):
    """Sent at login in place of the password; the server stores only an Argon2 hash of it."""

    __slots__ = ()

    def to_bytes(self) -> bytes:
        """The 32 bytes to send to the server's login endpoint, and nowhere else."""
        return self._material


class PasswordKek(_SecretKey):
    """Password-derived key-encryption key: opens the password key slot, never leaves the client."""

    __slots__ = ()


class RecoveryKey(_SecretKey):
    """256 random bits kept by the person; opens the recovery key slot."""

    __slots__ = ()


class PasskeyPrfOutput(_SecretKey):
    """The 32-byte WebAuthn PRF output of a passkey; opens a passkey key slot."""

    __slots__ = ()


class AccountKey(_SecretKey):
    """The account's symmetric key: wraps the owner's study keys and keys owner-side tags."""

    __slots__ = ()


class StudyKey(_SecretKey):
    """A fresh random key per study; every other study key derives from it."""

    __slots__ = ()


class ContentKey(_SecretKey):
    """Per-instance key derived from the study key and the instance's file id."""

    __slots__ = ()

    def to_bytes(self) -> bytes:
        """The 32 bytes, for the STREAM opener of the browser worker, and nowhere else.

        That opener (protocol.md §14.5) runs in the same worker as this code and reads
        without copying each file through Python.
        """
        return self._material


class WrapKey(_SecretKey):
    """A derived key that only wraps one other key (slots, grants, links)."""

    __slots__ = ()


class LinkSecret(_SecretKey):
    """The 256-bit secret of an anonymous link; lives only in the URL fragment."""

    __slots__ = ()

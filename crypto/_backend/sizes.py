"""Sizes and limits of the libsodium calls in the seam, checked the same way by every backend.

Misuse (a wrong key or nonce size) raises ``ValueError`` before any backend is called, so both
runtimes report it identically; data that is too short to be valid (a ciphertext without room
for a tag, a signature of the wrong length) is attacker-controlled and fails authentication.
"""

from __future__ import annotations

from typing import Final

from securepacs.crypto.errors import AuthenticationFailed

__all__ = (
    "AEAD_KEY_BYTES",
    "AEAD_TAG_BYTES",
    "CHACHA20POLY1305_IETF_NONCE_BYTES",
    "ED25519_PUBLIC_KEY_BYTES",
    "ED25519_SECRET_KEY_BYTES",
    "ED25519_SEED_BYTES",
    "ED25519_SIGNATURE_BYTES",
    "PWHASH_SALT_BYTES",
    "X25519_BYTES",
    "XCHACHA20POLY1305_IETF_NONCE_BYTES",
    "check_aead",
    "check_pwhash",
    "check_signature",
    "require_size",
)

AEAD_KEY_BYTES: Final = 32
AEAD_TAG_BYTES: Final = 16
CHACHA20POLY1305_IETF_NONCE_BYTES: Final = 12
XCHACHA20POLY1305_IETF_NONCE_BYTES: Final = 24
X25519_BYTES: Final = 32
ED25519_SEED_BYTES: Final = 32
ED25519_PUBLIC_KEY_BYTES: Final = 32
ED25519_SECRET_KEY_BYTES: Final = 64
ED25519_SIGNATURE_BYTES: Final = 64
PWHASH_SALT_BYTES: Final = 16
PWHASH_MIN_OUTPUT_BYTES: Final = 16
PWHASH_MIN_OPSLIMIT: Final = 1
PWHASH_MIN_MEMLIMIT_BYTES: Final = 8192
# libsodium.js passes sizes through asm.js-style `x | 0`; the same bound keeps both runtimes equal.
INT32_MAX: Final = 2**31 - 1


def require_size(value: bytes, size: int, what: str) -> None:
    """Raise ``ValueError`` unless ``value`` is exactly ``size`` bytes."""
    if len(value) != size:
        raise ValueError(f"{what} must be {size} bytes long")


def check_aead(nonce: bytes, key: bytes, nonce_size: int, ciphertext: bytes | None = None) -> None:
    """Check an AEAD call: nonce and key sizes are misuse, a tag-less ciphertext is bad data."""
    require_size(nonce, nonce_size, "nonce")
    require_size(key, AEAD_KEY_BYTES, "key")
    if ciphertext is not None and len(ciphertext) < AEAD_TAG_BYTES:
        raise AuthenticationFailed


def check_signature(signature: bytes, public_key: bytes) -> None:
    """A public key of the wrong size is misuse; a signature of the wrong size is bad data."""
    require_size(public_key, ED25519_PUBLIC_KEY_BYTES, "public_key")
    if len(signature) != ED25519_SIGNATURE_BYTES:
        raise AuthenticationFailed


def check_pwhash(size: int, salt: bytes, opslimit: int, memlimit_bytes: int) -> None:
    """Argon2id arguments within libsodium's limits on both runtimes."""
    require_size(salt, PWHASH_SALT_BYTES, "salt")
    if not PWHASH_MIN_OUTPUT_BYTES <= size <= INT32_MAX:
        raise ValueError("derived key size is out of range")
    if not PWHASH_MIN_OPSLIMIT <= opslimit <= INT32_MAX:
        raise ValueError("opslimit is out of range")
    if not PWHASH_MIN_MEMLIMIT_BYTES <= memlimit_bytes <= INT32_MAX:
        raise ValueError("memlimit is out of range")

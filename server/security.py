"""Server-side secrets handling: Argon2 hashes of authentication keys, tokens, fake salts.

Argon2 runs in worker threads under a capacity limiter, so sign-ins never block the event loop
and a burst of them cannot exhaust memory. Unknown accounts cost the same work as known ones (a
dummy hash is verified) and get deterministic fake KDF parameters, so neither timing nor the
pre-login answer tells whether an email is registered.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final

import anyio
import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from securepacs.crypto.kdf import (
    ARGON2_MEMORY_KIB,
    ARGON2_OPSLIMIT,
    ARGON2ID,
    SALT_BYTES,
    KdfParams,
)

__all__ = ("AuthKeyHasher", "fake_kdf_params", "hash_token", "new_token")

TOKEN_BYTES: Final = 32
# The authentication key already has 256 bits of entropy (it is an Argon2id output on the client):
# the server-side hash protects a stolen database against replay, not against guessing, so
# moderate parameters suffice (OWASP's minimum for argon2id).
_TIME_COST: Final = 2
_MEMORY_KIB: Final = 19 * 1024


class AuthKeyHasher:
    """argon2-cffi hashing and verification of authentication keys, off the event loop."""

    def __init__(self, workers: int) -> None:
        self._hasher = PasswordHasher(time_cost=_TIME_COST, memory_cost=_MEMORY_KIB, parallelism=1)
        self._limiter = anyio.CapacityLimiter(workers)
        self._dummy = self._hasher.hash(bytes(TOKEN_BYTES))

    async def hash(self, auth_key: bytes) -> str:
        """The encoded Argon2id hash to store."""
        return await anyio.to_thread.run_sync(self._hasher.hash, auth_key, limiter=self._limiter)

    async def verify(self, stored: str | None, auth_key: bytes) -> bool:
        """True when ``auth_key`` matches; an unknown account (None) costs the same and fails."""

        def check() -> bool:
            try:
                self._hasher.verify(stored or self._dummy, auth_key)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False
            # verify() raises on mismatch; a match against the dummy still means "no account".
            return stored is not None

        return await anyio.to_thread.run_sync(check, limiter=self._limiter)


def new_token() -> tuple[str, bytes]:
    """A fresh bearer token for a cookie or a mailed link, and the hash to store for it."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, hash_token(token)


def hash_token(token: str) -> bytes:
    """SHA-256 of a token: enough for 256-bit random tokens, and comparable by index lookup."""
    return hashlib.sha256(token.encode("ascii", "replace")).digest()


def fake_kdf_params(secret_key: bytes, email: str) -> KdfParams:
    """Deterministic parameters for an unknown email: same shape, stable across calls."""
    salt = hmac.new(secret_key, b"securepacs/fake-salt\x00" + email.encode(), "sha256").digest()
    return KdfParams(
        alg=ARGON2ID,
        opslimit=ARGON2_OPSLIMIT,
        memlimit_kib=ARGON2_MEMORY_KIB,
        salt=salt[:SALT_BYTES],
    )

"""The primitive seam: exactly the libsodium calls the protocol uses.

Every backend implements this protocol byte-for-byte like libsodium, because both backends *are*
libsodium (native through PyNaCl, wasm through libsodium.js). Failures are reported with the
package's own error types so that callers never see a backend exception.
"""

from __future__ import annotations

from typing import Protocol


class Backend(Protocol):
    """The libsodium calls SecurePACS uses, with libsodium's argument order and sizes."""

    name: str

    def randombytes(self, size: int) -> bytes:
        """Return ``size`` bytes from the operating system's CSPRNG."""
        ...

    def aead_chacha20poly1305_ietf_encrypt(
        self, message: bytes, ad: bytes, nonce: bytes, key: bytes
    ) -> bytes:
        """``crypto_aead_chacha20poly1305_ietf_encrypt``: 12-byte nonce, 32-byte key."""
        ...

    def aead_chacha20poly1305_ietf_decrypt(
        self, ciphertext: bytes, ad: bytes, nonce: bytes, key: bytes
    ) -> bytes:
        """Decrypt and verify; raises ``AuthenticationFailed`` on any tag mismatch."""
        ...

    def aead_xchacha20poly1305_ietf_encrypt(
        self, message: bytes, ad: bytes, nonce: bytes, key: bytes
    ) -> bytes:
        """``crypto_aead_xchacha20poly1305_ietf_encrypt``: 24-byte nonce, 32-byte key."""
        ...

    def aead_xchacha20poly1305_ietf_decrypt(
        self, ciphertext: bytes, ad: bytes, nonce: bytes, key: bytes
    ) -> bytes:
        """Decrypt and verify; raises ``AuthenticationFailed`` on any tag mismatch."""
        ...

    def scalarmult(self, secret: bytes, public: bytes) -> bytes:
        """X25519 (``crypto_scalarmult``); raises ``AuthenticationFailed`` on an all-zero result."""
        ...

    def scalarmult_base(self, secret: bytes) -> bytes:
        """X25519 public key of ``secret`` (``crypto_scalarmult_base``)."""
        ...

    def sign_seed_keypair(self, seed: bytes) -> tuple[bytes, bytes]:
        """Ed25519 key pair from a 32-byte seed: (public key, 64-byte secret key)."""
        ...

    def sign_detached(self, message: bytes, secret_key: bytes) -> bytes:
        """Ed25519 signature (64 bytes) of ``message``."""
        ...

    def sign_verify_detached(self, signature: bytes, message: bytes, public_key: bytes) -> None:
        """Verify an Ed25519 signature; raises ``AuthenticationFailed`` if it does not verify."""
        ...

    def pwhash_argon2id(
        self,
        size: int,
        password: bytes,
        salt: bytes,
        opslimit: int,
        memlimit_bytes: int,
    ) -> bytes:
        """``crypto_pwhash`` with ``crypto_pwhash_ALG_ARGON2ID13``."""
        ...

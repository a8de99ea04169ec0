"""CPython backend over ``nacl.bindings``: the only module that imports PyNaCl."""

from __future__ import annotations

from nacl import bindings, exceptions

from securepacs.crypto._backend.sizes import (
    CHACHA20POLY1305_IETF_NONCE_BYTES,
    ED25519_SECRET_KEY_BYTES,
    ED25519_SEED_BYTES,
    X25519_BYTES,
    XCHACHA20POLY1305_IETF_NONCE_BYTES,
    check_aead,
    check_pwhash,
    check_signature,
    require_size,
)
from securepacs.crypto.errors import AuthenticationFailed

__all__ = ("NaclBackend",)


class NaclBackend:
    """libsodium as bundled by PyNaCl."""

    name = "pynacl"

    def randombytes(self, size: int) -> bytes:
        return bindings.randombytes(size)

    def aead_chacha20poly1305_ietf_encrypt(
        self, message: bytes, ad: bytes, nonce: bytes, key: bytes
    ) -> bytes:
        check_aead(nonce, key, CHACHA20POLY1305_IETF_NONCE_BYTES)
        return bindings.crypto_aead_chacha20poly1305_ietf_encrypt(message, ad, nonce, key)

    def aead_chacha20poly1305_ietf_decrypt(
        self, ciphertext: bytes, ad: bytes, nonce: bytes, key: bytes
    ) -> bytes:
        check_aead(nonce, key, CHACHA20POLY1305_IETF_NONCE_BYTES, ciphertext)
        try:
            return bindings.crypto_aead_chacha20poly1305_ietf_decrypt(ciphertext, ad, nonce, key)
        except exceptions.CryptoError:
            raise AuthenticationFailed from None

    def aead_xchacha20poly1305_ietf_encrypt(
        self, message: bytes, ad: bytes, nonce: bytes, key: bytes
    ) -> bytes:
        check_aead(nonce, key, XCHACHA20POLY1305_IETF_NONCE_BYTES)
        return bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(message, ad, nonce, key)

    def aead_xchacha20poly1305_ietf_decrypt(
        self, ciphertext: bytes, ad: bytes, nonce: bytes, key: bytes
    ) -> bytes:
        check_aead(nonce, key, XCHACHA20POLY1305_IETF_NONCE_BYTES, ciphertext)
        try:
            return bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, ad, nonce, key)
        except exceptions.CryptoError:
            raise AuthenticationFailed from None

    def scalarmult(self, secret: bytes, public: bytes) -> bytes:
        require_size(secret, X25519_BYTES, "secret")
        require_size(public, X25519_BYTES, "public")
        try:
            return bindings.crypto_scalarmult(secret, public)
        except exceptions.RuntimeError:
            # libsodium refuses an all-zero shared secret (a low-order public key).
            raise AuthenticationFailed from None

    def scalarmult_base(self, secret: bytes) -> bytes:
        require_size(secret, X25519_BYTES, "secret")
        return bindings.crypto_scalarmult_base(secret)

    def sign_seed_keypair(self, seed: bytes) -> tuple[bytes, bytes]:
        require_size(seed, ED25519_SEED_BYTES, "seed")
        public, secret = bindings.crypto_sign_seed_keypair(seed)
        return public, secret

    def sign_detached(self, message: bytes, secret_key: bytes) -> bytes:
        require_size(secret_key, ED25519_SECRET_KEY_BYTES, "secret_key")
        # PyNaCl exposes only combined-mode signing; the signature is its first 64 bytes.
        return bindings.crypto_sign(message, secret_key)[:64]

    def sign_verify_detached(self, signature: bytes, message: bytes, public_key: bytes) -> None:
        check_signature(signature, public_key)
        try:
            bindings.crypto_sign_open(signature + message, public_key)
        except (exceptions.BadSignatureError, exceptions.CryptoError):
            raise AuthenticationFailed from None

    def pwhash_argon2id(
        self, size: int, password: bytes, salt: bytes, opslimit: int, memlimit_bytes: int
    ) -> bytes:
        check_pwhash(size, salt, opslimit, memlimit_bytes)
        return bindings.crypto_pwhash_alg(
            size, password, salt, opslimit, memlimit_bytes, bindings.crypto_pwhash_ALG_ARGON2ID13
        )

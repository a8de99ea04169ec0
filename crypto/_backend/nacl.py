"""CPython backend over ``nacl.bindings``: the only module that imports PyNaCl."""

from __future__ import annotations

from nacl import bindings, exceptions

from securepacs.crypto.errors import AuthenticationFailed

__all__ = ("NaclBackend",)

_SIGNATURE_BYTES = 64


class NaclBackend:
    """libsodium as bundled by PyNaCl."""

    name = "pynacl"

    def randombytes(self, size: int) -> bytes:
        return bindings.randombytes(size)

    def aead_chacha20poly1305_ietf_encrypt(
        self, message: bytes, ad: bytes, nonce: bytes, key: bytes
    ) -> bytes:
        return bindings.crypto_aead_chacha20poly1305_ietf_encrypt(message, ad, nonce, key)

    def aead_chacha20poly1305_ietf_decrypt(
        self, ciphertext: bytes, ad: bytes, nonce: bytes, key: bytes
    ) -> bytes:
        try:
            return bindings.crypto_aead_chacha20poly1305_ietf_decrypt(ciphertext, ad, nonce, key)
        except exceptions.CryptoError:
            raise AuthenticationFailed from None

    def aead_xchacha20poly1305_ietf_encrypt(
        self, message: bytes, ad: bytes, nonce: bytes, key: bytes
    ) -> bytes:
        return bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(message, ad, nonce, key)

    def aead_xchacha20poly1305_ietf_decrypt(
        self, ciphertext: bytes, ad: bytes, nonce: bytes, key: bytes
    ) -> bytes:
        try:
            return bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, ad, nonce, key)
        except exceptions.CryptoError:
            raise AuthenticationFailed from None

    def scalarmult(self, secret: bytes, public: bytes) -> bytes:
        try:
            return bindings.crypto_scalarmult(secret, public)
        except exceptions.RuntimeError:
            # libsodium refuses an all-zero shared secret (a low-order public key).
            raise AuthenticationFailed from None

    def scalarmult_base(self, secret: bytes) -> bytes:
        return bindings.crypto_scalarmult_base(secret)

    def sign_seed_keypair(self, seed: bytes) -> tuple[bytes, bytes]:
        public, secret = bindings.crypto_sign_seed_keypair(seed)
        return public, secret

    def sign_detached(self, message: bytes, secret_key: bytes) -> bytes:
        # PyNaCl exposes only combined-mode signing; the signature is its first 64 bytes.
        return bindings.crypto_sign(message, secret_key)[:_SIGNATURE_BYTES]

    def sign_verify_detached(self, signature: bytes, message: bytes, public_key: bytes) -> None:
        if len(signature) != _SIGNATURE_BYTES:
            raise AuthenticationFailed
        try:
            bindings.crypto_sign_open(signature + message, public_key)
        except (exceptions.BadSignatureError, exceptions.CryptoError):
            raise AuthenticationFailed from None

    def pwhash_argon2id(
        self,
        size: int,
        password: bytes,
        salt: bytes,
        opslimit: int,
        memlimit_bytes: int,
    ) -> bytes:
        return bindings.crypto_pwhash_alg(
            size,
            password,
            salt,
            opslimit,
            memlimit_bytes,
            bindings.crypto_pwhash_ALG_ARGON2ID13,
        )

# Every value that crosses into JavaScript is a JsProxy, which the type checker can only see as
# Any; these relaxations are confined to this module so the rest of the package stays Any-free.
# mypy: disable-error-code="import-not-found, no-any-return"
"""Pyodide backend over libsodium.js (libsodium-wrappers-sumo): all JS<->bytes conversion is here.

The JavaScript host loads libsodium-wrappers-sumo, awaits ``sodium.ready`` and registers the
ready object with ``pyodide.registerJsModule("_securepacs_sodium", sodium)`` before any Python
code asks for the backend. This module imports nothing from Pyodide at import time, so it can
still be linted, type-checked and imported by tooling on CPython.

Sizes are checked here, before anything reaches JavaScript, so that misuse raises ``ValueError``
exactly as documented by the protocol instead of a ``JsException`` carrying libsodium.js's text.
Every JavaScript failure while opening, verifying or multiplying becomes ``AuthenticationFailed``
with its fixed message: libsodium.js's own error text must not leak which check failed.
"""

from __future__ import annotations

from typing import Any

from securepacs.crypto._backend.sizes import (
    CHACHA20POLY1305_IETF_NONCE_BYTES,
    ED25519_SECRET_KEY_BYTES,
    ED25519_SEED_BYTES,
    INT32_MAX,
    X25519_BYTES,
    XCHACHA20POLY1305_IETF_NONCE_BYTES,
    check_aead,
    check_pwhash,
    check_signature,
    require_size,
)
from securepacs.crypto.errors import AuthenticationFailed

__all__ = ("SodiumJsBackend",)


class SodiumJsBackend:
    """libsodium as compiled to WebAssembly by libsodium.js, called through Pyodide's FFI."""

    name = "libsodium.js"

    def __init__(self) -> None:
        # These modules exist only inside Pyodide, and the sodium one only once the host has
        # registered it, so they are imported when the backend is chosen, not at import time.
        import _securepacs_sodium
        from js import Uint8Array
        from pyodide.ffi import JsException

        self._sodium: Any = _securepacs_sodium
        self._new_uint8array: Any = Uint8Array.new
        self._js_exception: type[Exception] = JsException
        self._argon2id13: int = _securepacs_sodium.crypto_pwhash_ALG_ARGON2ID13
        # Looking the functions up once saves a proxy round trip per call on the chunk path.
        self._chacha_encrypt: Any = _securepacs_sodium.crypto_aead_chacha20poly1305_ietf_encrypt
        self._chacha_decrypt: Any = _securepacs_sodium.crypto_aead_chacha20poly1305_ietf_decrypt
        self._xchacha_encrypt: Any = _securepacs_sodium.crypto_aead_xchacha20poly1305_ietf_encrypt
        self._xchacha_decrypt: Any = _securepacs_sodium.crypto_aead_xchacha20poly1305_ietf_decrypt

    def _js_bytes(self, data: bytes) -> Any:
        # One memcpy from the Python heap into a fresh Uint8Array: measured faster than
        # pyodide.ffi.to_js, and libsodium.js copies it into its own heap once more anyway.
        array = self._new_uint8array(len(data))
        array.assign(data)
        return array

    def _js_optional_bytes(self, data: bytes) -> Any:
        # libsodium.js treats a missing additional-data argument as zero-length data, which spares
        # an allocation on its heap for the common empty case.
        return self._js_bytes(data) if data else None

    def randombytes(self, size: int) -> bytes:
        if not 0 <= size <= INT32_MAX:
            raise ValueError("size must be a non-negative 32-bit integer")
        return self._sodium.randombytes_buf(size).to_bytes()

    def _aead_encrypt(
        self,
        encrypt: Any,
        message: bytes,
        ad: bytes,
        nonce: bytes,
        key: bytes,
        nonce_size: int,
    ) -> bytes:
        check_aead(nonce, key, nonce_size)
        sealed = encrypt(
            self._js_bytes(message),
            self._js_optional_bytes(ad),
            None,
            self._js_bytes(nonce),
            self._js_bytes(key),
        )
        return sealed.to_bytes()

    def _aead_decrypt(
        self,
        decrypt: Any,
        ciphertext: bytes,
        ad: bytes,
        nonce: bytes,
        key: bytes,
        nonce_size: int,
    ) -> bytes:
        check_aead(nonce, key, nonce_size, ciphertext)
        try:
            opened = decrypt(
                None,
                self._js_bytes(ciphertext),
                self._js_optional_bytes(ad),
                self._js_bytes(nonce),
                self._js_bytes(key),
            )
        except self._js_exception:
            raise AuthenticationFailed from None
        return opened.to_bytes()

    def aead_chacha20poly1305_ietf_encrypt(
        self, message: bytes, ad: bytes, nonce: bytes, key: bytes
    ) -> bytes:
        return self._aead_encrypt(
            self._chacha_encrypt,
            message,
            ad,
            nonce,
            key,
            CHACHA20POLY1305_IETF_NONCE_BYTES,
        )

    def aead_chacha20poly1305_ietf_decrypt(
        self, ciphertext: bytes, ad: bytes, nonce: bytes, key: bytes
    ) -> bytes:
        return self._aead_decrypt(
            self._chacha_decrypt,
            ciphertext,
            ad,
            nonce,
            key,
            CHACHA20POLY1305_IETF_NONCE_BYTES,
        )

    def aead_xchacha20poly1305_ietf_encrypt(
        self, message: bytes, ad: bytes, nonce: bytes, key: bytes
    ) -> bytes:
        return self._aead_encrypt(
            self._xchacha_encrypt,
            message,
            ad,
            nonce,
            key,
            XCHACHA20POLY1305_IETF_NONCE_BYTES,
        )

    def aead_xchacha20poly1305_ietf_decrypt(
        self, ciphertext: bytes, ad: bytes, nonce: bytes, key: bytes
    ) -> bytes:
        return self._aead_decrypt(
            self._xchacha_decrypt,
            ciphertext,
            ad,
            nonce,
            key,
            XCHACHA20POLY1305_IETF_NONCE_BYTES,
        )

    def scalarmult(self, secret: bytes, public: bytes) -> bytes:
        require_size(secret, X25519_BYTES, "secret")
        require_size(public, X25519_BYTES, "public")
        try:
            shared = self._sodium.crypto_scalarmult(self._js_bytes(secret), self._js_bytes(public))
        except self._js_exception:
            # libsodium refuses an all-zero shared secret (a low-order public key).
            raise AuthenticationFailed from None
        return shared.to_bytes()

    def scalarmult_base(self, secret: bytes) -> bytes:
        require_size(secret, X25519_BYTES, "secret")
        return self._sodium.crypto_scalarmult_base(self._js_bytes(secret)).to_bytes()

    def sign_seed_keypair(self, seed: bytes) -> tuple[bytes, bytes]:
        require_size(seed, ED25519_SEED_BYTES, "seed")
        pair = self._sodium.crypto_sign_seed_keypair(self._js_bytes(seed))
        return pair.publicKey.to_bytes(), pair.privateKey.to_bytes()

    def sign_detached(self, message: bytes, secret_key: bytes) -> bytes:
        require_size(secret_key, ED25519_SECRET_KEY_BYTES, "secret_key")
        signature = self._sodium.crypto_sign_detached(
            self._js_bytes(message), self._js_bytes(secret_key)
        )
        return signature.to_bytes()

    def sign_verify_detached(self, signature: bytes, message: bytes, public_key: bytes) -> None:
        check_signature(signature, public_key)
        try:
            valid = self._sodium.crypto_sign_verify_detached(
                self._js_bytes(signature),
                self._js_bytes(message),
                self._js_bytes(public_key),
            )
        except self._js_exception:
            raise AuthenticationFailed from None
        # libsodium.js reports a bad signature by returning false rather than by throwing.
        if valid is not True:
            raise AuthenticationFailed

    def pwhash_argon2id(
        self,
        size: int,
        password: bytes,
        salt: bytes,
        opslimit: int,
        memlimit_bytes: int,
    ) -> bytes:
        check_pwhash(size, salt, opslimit, memlimit_bytes)
        try:
            derived = self._sodium.crypto_pwhash(
                size,
                self._js_bytes(password),
                self._js_bytes(salt),
                opslimit,
                memlimit_bytes,
                self._argon2id13,
            )
        except self._js_exception:
            # libsodium refuses the parameters (or cannot allocate the memory they ask for).
            raise ValueError("Argon2id parameters were refused by libsodium") from None
        return derived.to_bytes()

# Every value that crosses into JavaScript is a JsProxy, which the type checker can only see as
# Any; these relaxations are confined to this module so the rest of the package stays Any-free.
# mypy: disable-error-code="import-not-found, misc, no-any-return"
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

from securepacs.crypto.errors import AuthenticationFailed

__all__ = ("SodiumJsBackend",)

_AEAD_KEY_BYTES = 32
_AEAD_TAG_BYTES = 16
_CHACHA20POLY1305_IETF_NONCE_BYTES = 12
_XCHACHA20POLY1305_IETF_NONCE_BYTES = 24
_X25519_BYTES = 32
_ED25519_SEED_BYTES = 32
_ED25519_PUBLIC_KEY_BYTES = 32
_ED25519_SECRET_KEY_BYTES = 64
_ED25519_SIGNATURE_BYTES = 64
_PWHASH_SALT_BYTES = 16
_PWHASH_MIN_OUTPUT_BYTES = 16
_PWHASH_MIN_OPSLIMIT = 1
_PWHASH_MIN_MEMLIMIT_BYTES = 8192
# libsodium.js passes sizes and limits through asm.js-style `x | 0` checks, so anything that does
# not fit a signed 32-bit integer is refused there; refusing it here keeps the error a ValueError.
_JS_INT_MAX = 2**31 - 1
_ARGON2ID13 = 2


def _require_size(value: bytes, size: int, what: str) -> None:
    if len(value) != size:
        raise ValueError(f"{what} must be {size} bytes long")


class SodiumJsBackend:
    """libsodium as compiled to WebAssembly by libsodium.js, called through Pyodide's FFI."""

    name = "libsodium.js"

    def __init__(self) -> None:
        # Both imports only exist inside Pyodide, and the sodium module only after the host has
        # registered it, so they happen when the backend is chosen rather than at import time.
        import _securepacs_sodium
        from js import Uint8Array
        from pyodide.ffi import JsException

        self._sodium: Any = _securepacs_sodium
        self._new_uint8array: Any = Uint8Array.new
        self._js_exception: type[Exception] = JsException
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
        if not 0 <= size <= _JS_INT_MAX:
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
        _require_size(nonce, nonce_size, "nonce")
        _require_size(key, _AEAD_KEY_BYTES, "key")
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
        _require_size(nonce, nonce_size, "nonce")
        _require_size(key, _AEAD_KEY_BYTES, "key")
        if len(ciphertext) < _AEAD_TAG_BYTES:
            # Too short to carry a tag: this is damaged data, not misuse of the API.
            raise AuthenticationFailed
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
            _CHACHA20POLY1305_IETF_NONCE_BYTES,
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
            _CHACHA20POLY1305_IETF_NONCE_BYTES,
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
            _XCHACHA20POLY1305_IETF_NONCE_BYTES,
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
            _XCHACHA20POLY1305_IETF_NONCE_BYTES,
        )

    def scalarmult(self, secret: bytes, public: bytes) -> bytes:
        _require_size(secret, _X25519_BYTES, "secret")
        _require_size(public, _X25519_BYTES, "public")
        try:
            shared = self._sodium.crypto_scalarmult(self._js_bytes(secret), self._js_bytes(public))
        except self._js_exception:
            # libsodium refuses an all-zero shared secret (a low-order public key).
            raise AuthenticationFailed from None
        return shared.to_bytes()

    def scalarmult_base(self, secret: bytes) -> bytes:
        _require_size(secret, _X25519_BYTES, "secret")
        return self._sodium.crypto_scalarmult_base(self._js_bytes(secret)).to_bytes()

    def sign_seed_keypair(self, seed: bytes) -> tuple[bytes, bytes]:
        _require_size(seed, _ED25519_SEED_BYTES, "seed")
        pair = self._sodium.crypto_sign_seed_keypair(self._js_bytes(seed))
        return pair.publicKey.to_bytes(), pair.privateKey.to_bytes()

    def sign_detached(self, message: bytes, secret_key: bytes) -> bytes:
        _require_size(secret_key, _ED25519_SECRET_KEY_BYTES, "secret_key")
        signature = self._sodium.crypto_sign_detached(
            self._js_bytes(message), self._js_bytes(secret_key)
        )
        return signature.to_bytes()

    def sign_verify_detached(self, signature: bytes, message: bytes, public_key: bytes) -> None:
        _require_size(public_key, _ED25519_PUBLIC_KEY_BYTES, "public_key")
        if len(signature) != _ED25519_SIGNATURE_BYTES:
            # A signature of the wrong length is attacker-controlled data, not misuse.
            raise AuthenticationFailed
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
        _require_size(salt, _PWHASH_SALT_BYTES, "salt")
        if not _PWHASH_MIN_OUTPUT_BYTES <= size <= _JS_INT_MAX:
            raise ValueError("derived key size is out of range")
        if not _PWHASH_MIN_OPSLIMIT <= opslimit <= _JS_INT_MAX:
            raise ValueError("opslimit is out of range")
        if not _PWHASH_MIN_MEMLIMIT_BYTES <= memlimit_bytes <= _JS_INT_MAX:
            raise ValueError("memlimit is out of range")
        try:
            derived = self._sodium.crypto_pwhash(
                size,
                self._js_bytes(password),
                self._js_bytes(salt),
                opslimit,
                memlimit_bytes,
                _ARGON2ID13,
            )
        except self._js_exception:
            # libsodium refuses the parameters (or cannot allocate the memory they ask for).
            raise ValueError("Argon2id parameters were refused by libsodium") from None
        return derived.to_bytes()

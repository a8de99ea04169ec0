"""Deterministic calls through every method of the primitive seam, for cross-backend comparison.

Stdlib-only (plus the seam), so the same file runs on CPython and is shipped into Pyodide as
source. :func:`run` takes ``{"cases": [names...]}`` (or ``{}`` for all) as JSON and answers a
JSON object mapping each case to ``{"ok": "<hex>"}`` or ``{"error": "<exception class>"}``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from securepacs.crypto._backend import get_backend

if TYPE_CHECKING:
    from collections.abc import Callable

    from securepacs.crypto._backend import Backend

__all__ = ("CASES", "run")

_KEY = bytes(range(32))
_NONCE = bytes(range(100, 112))
_XNONCE = bytes(range(200, 224))
_AD = b"securepacs/v1/probe"
_MESSAGE = b"a DICOM slice stands in here" * 37
_SEED_A = bytes(range(1, 33))
_SEED_B = bytes(range(33, 65))
_SALT = bytes(range(16))
# The smallest cost libsodium accepts keeps the probe fast; the parameters are inputs here.
_PWHASH_OPSLIMIT = 1
_PWHASH_MEMLIMIT_BYTES = 8192


def _flip_last(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 1])


def _sealed(backend: Backend) -> bytes:
    return backend.aead_chacha20poly1305_ietf_encrypt(_MESSAGE, _AD, _NONCE, _KEY)


def _xsealed(backend: Backend) -> bytes:
    return backend.aead_xchacha20poly1305_ietf_encrypt(_MESSAGE, _AD, _XNONCE, _KEY)


def _secret_key(backend: Backend) -> bytes:
    return backend.sign_seed_keypair(_SEED_A)[1]


def _public_key(backend: Backend) -> bytes:
    return backend.sign_seed_keypair(_SEED_A)[0]


def _signature(backend: Backend) -> bytes:
    return backend.sign_detached(_MESSAGE, _secret_key(backend))


def _verified(
    backend: Backend, signature: bytes, message: bytes, public_key: bytes | None = None
) -> bytes:
    backend.sign_verify_detached(signature, message, public_key or _public_key(backend))
    return b"verified"


CASES: dict[str, Callable[[Backend], bytes]] = {
    # Calls that must succeed with the same bytes on every backend.
    "randombytes_length": lambda b: len(b.randombytes(48)).to_bytes(2, "big"),
    "randombytes_empty": lambda b: b.randombytes(0),
    "chacha_seal": _sealed,
    "chacha_seal_empty": lambda b: b.aead_chacha20poly1305_ietf_encrypt(b"", b"", _NONCE, _KEY),
    "chacha_open": lambda b: b.aead_chacha20poly1305_ietf_decrypt(_sealed(b), _AD, _NONCE, _KEY),
    "xchacha_seal": _xsealed,
    "xchacha_open": lambda b: b.aead_xchacha20poly1305_ietf_decrypt(
        _xsealed(b), _AD, _XNONCE, _KEY
    ),
    "x25519_base": lambda b: b.scalarmult_base(_SEED_A),
    "x25519_shared": lambda b: b.scalarmult(_SEED_A, b.scalarmult_base(_SEED_B)),
    "x25519_shared_reverse": lambda b: b.scalarmult(_SEED_B, b.scalarmult_base(_SEED_A)),
    "ed25519_keypair": lambda b: b"".join(b.sign_seed_keypair(_SEED_A)),
    "ed25519_sign": _signature,
    "ed25519_verify": lambda b: _verified(b, _signature(b), _MESSAGE),
    "argon2id": lambda b: b.pwhash_argon2id(
        32, b"correct horse", _SALT, _PWHASH_OPSLIMIT, _PWHASH_MEMLIMIT_BYTES
    ),
    # Bad data: must raise AuthenticationFailed.
    "chacha_open_tampered": lambda b: b.aead_chacha20poly1305_ietf_decrypt(
        _flip_last(_sealed(b)), _AD, _NONCE, _KEY
    ),
    "chacha_open_other_ad": lambda b: b.aead_chacha20poly1305_ietf_decrypt(
        _sealed(b), b"other", _NONCE, _KEY
    ),
    "chacha_open_too_short": lambda b: b.aead_chacha20poly1305_ietf_decrypt(
        bytes(15), _AD, _NONCE, _KEY
    ),
    "xchacha_open_tampered": lambda b: b.aead_xchacha20poly1305_ietf_decrypt(
        _flip_last(_xsealed(b)), _AD, _XNONCE, _KEY
    ),
    "x25519_low_order": lambda b: b.scalarmult(_SEED_A, bytes(32)),
    "ed25519_verify_tampered": lambda b: _verified(b, _signature(b), _flip_last(_MESSAGE)),
    "ed25519_verify_short_signature": lambda b: _verified(b, _signature(b)[:63], _MESSAGE),
    # Misuse (wrong sizes or parameters): must raise ValueError.
    "chacha_seal_short_nonce": lambda b: b.aead_chacha20poly1305_ietf_encrypt(
        _MESSAGE, _AD, _NONCE[:11], _KEY
    ),
    "chacha_seal_short_key": lambda b: b.aead_chacha20poly1305_ietf_encrypt(
        _MESSAGE, _AD, _NONCE, _KEY[:31]
    ),
    "chacha_open_long_nonce": lambda b: b.aead_chacha20poly1305_ietf_decrypt(
        _sealed(b), _AD, _XNONCE, _KEY
    ),
    "xchacha_seal_short_nonce": lambda b: b.aead_xchacha20poly1305_ietf_encrypt(
        _MESSAGE, _AD, _NONCE, _KEY
    ),
    "x25519_short_public": lambda b: b.scalarmult(_SEED_A, bytes(31)),
    "x25519_base_short_secret": lambda b: b.scalarmult_base(_SEED_A[:31]),
    "ed25519_short_seed": lambda b: b"".join(b.sign_seed_keypair(_SEED_A[:31])),
    "ed25519_sign_short_secret_key": lambda b: b.sign_detached(_MESSAGE, _secret_key(b)[:63]),
    "ed25519_verify_short_public_key": lambda b: _verified(
        b, _signature(b), _MESSAGE, _public_key(b)[:31]
    ),
    "argon2id_short_salt": lambda b: b.pwhash_argon2id(
        32, b"pw", _SALT[:15], _PWHASH_OPSLIMIT, _PWHASH_MEMLIMIT_BYTES
    ),
    "argon2id_zero_opslimit": lambda b: b.pwhash_argon2id(32, b"pw", _SALT, 0, 8192),
    "argon2id_tiny_memlimit": lambda b: b.pwhash_argon2id(32, b"pw", _SALT, 1, 1024),
    "argon2id_short_output": lambda b: b.pwhash_argon2id(8, b"pw", _SALT, 1, 8192),
    "randombytes_negative": lambda b: b.randombytes(-1),
}


def run(argument: str) -> str:
    """Run the requested cases (all when none are named) on this interpreter's backend."""
    request: object = json.loads(argument)
    names = request.get("cases") if isinstance(request, dict) else None
    selected = sorted(CASES) if not names else [str(name) for name in names]
    backend = get_backend()
    results: dict[str, dict[str, str]] = {}
    for name in selected:
        try:
            results[name] = {"ok": CASES[name](backend).hex()}
        except Exception as error:  # noqa: BLE001 - the class of any failure is the finding
            results[name] = {"error": type(error).__name__}
    return json.dumps({"backend": backend.name, "results": results}, sort_keys=True)

"""Wycheproof vectors through the primitive seam, on whichever backend this interpreter has.

Only the standard library and the seam itself are imported, so this one file runs unchanged on
CPython (PyNaCl) and inside Pyodide (libsodium.js): the host reads the vector JSON and passes it
in. Call :func:`run` with ``{"name": "<file stem>", "data": <parsed Wycheproof JSON>}`` as a JSON
string; it answers ``{"passed": n, "failed": [tcId, ...], "acceptable": n, "reasons": {...}}``.

Rules: a ``valid`` case must succeed with exactly the expected output; an ``invalid`` case must be
rejected, which means the seam raised ``ValueError`` or ``AuthenticationFailed``; an
``acceptable`` case may be rejected or succeed, but if it succeeds its output must be exact.
Any other exception is a crash and fails the case. For AEAD cases with a nonce or key size the
seam does not support, both encryption and decryption must be rejected.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from securepacs.crypto._backend import get_backend
from securepacs.crypto.errors import AuthenticationFailed

if TYPE_CHECKING:
    from collections.abc import Callable

    from securepacs.crypto._backend import Backend

__all__ = ("run",)

_REJECTIONS = (ValueError, AuthenticationFailed)
_AEAD_KEY_BYTES = 32

Outcome = Literal["accepted", "rejected"]


class _WrongOutput(Exception):
    """The seam accepted the case but produced bytes other than the expected ones."""


class _Crash(Exception):
    """The seam raised something that is neither a result nor a rejection."""


@dataclass
class _Tally:
    passed: int = 0
    acceptable: int = 0
    failed: list[int] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)

    def fail(self, case_id: int, reason: str) -> None:
        self.failed.append(case_id)
        self.reasons[str(case_id)] = reason


def _field(table: object, key: str) -> object:
    if not isinstance(table, dict) or key not in table:
        raise ValueError(f"Wycheproof data has no field {key!r} here")
    value: object = table[key]
    return value


def _text(table: object, key: str) -> str:
    value = _field(table, key)
    if not isinstance(value, str):
        raise TypeError(f"Wycheproof field {key!r} is not a string")
    return value


def _hex(table: object, key: str) -> bytes:
    return bytes.fromhex(_text(table, key))


def _list(table: object, key: str) -> list[object]:
    value = _field(table, key)
    if not isinstance(value, list):
        raise TypeError(f"Wycheproof field {key!r} is not a list")
    return value


def _attempt(operation: Callable[[], bytes | None], expected: bytes | None, step: str) -> Outcome:
    """Run one seam call; ``expected`` is None for calls that return nothing."""
    try:
        produced = operation()
    except _REJECTIONS:
        return "rejected"
    except Exception as error:  # noqa: BLE001 - a crash is a per-case finding, not a runner error
        raise _Crash(f"{step} raised {type(error).__module__}.{type(error).__qualname__}") from None
    if produced != expected:
        raise _WrongOutput(f"{step} returned unexpected bytes")
    return "accepted"


def _combine(outcomes: list[Outcome]) -> Outcome:
    # A case is accepted or rejected as a whole: encrypting fine but refusing to decrypt (or the
    # reverse) means the two directions disagree, which no result label allows.
    if len(set(outcomes)) != 1:
        raise _WrongOutput(f"encrypt and decrypt disagree ({' / '.join(outcomes)})")
    return outcomes[0]


def _aead_checker(
    nonce_bytes: int,
    encrypt: Callable[[Backend], Callable[[bytes, bytes, bytes, bytes], bytes]],
    decrypt: Callable[[Backend], Callable[[bytes, bytes, bytes, bytes], bytes]],
) -> Callable[[Backend, object, object], Outcome]:
    def check(backend: Backend, group: object, case: object) -> Outcome:
        del group
        key, nonce = _hex(case, "key"), _hex(case, "iv")
        message, ad = _hex(case, "msg"), _hex(case, "aad")
        sealed = _hex(case, "ct") + _hex(case, "tag")

        def opening() -> bytes:
            return decrypt(backend)(sealed, ad, nonce, key)

        def sealing() -> bytes:
            return encrypt(backend)(message, ad, nonce, key)

        if _text(case, "result") != "invalid":
            return _combine(
                [_attempt(sealing, sealed, "encrypt"), _attempt(opening, message, "decrypt")]
            )
        outcomes = [_attempt(opening, message, "decrypt")]
        if len(nonce) != nonce_bytes or len(key) != _AEAD_KEY_BYTES:
            # A size the seam cannot take must be refused in both directions, not crash. A forged
            # tag, by contrast, says nothing about encryption, which would give the genuine tag.
            outcomes.append(_attempt(sealing, sealed, "encrypt"))
        return "rejected" if set(outcomes) == {"rejected"} else "accepted"

    return check


def _check_x25519(backend: Backend, group: object, case: object) -> Outcome:
    del group
    private, public = _hex(case, "private"), _hex(case, "public")
    shared = _hex(case, "shared")
    return _attempt(lambda: backend.scalarmult(private, public), shared, "scalarmult")


def _check_ed25519_verify(backend: Backend, group: object, case: object) -> Outcome:
    public_key = _hex(_field(group, "publicKey"), "pk")
    signature, message = _hex(case, "sig"), _hex(case, "msg")
    return _attempt(
        lambda: backend.sign_verify_detached(signature, message, public_key), None, "verify"
    )


_CHECKERS: dict[str, Callable[[Backend, object, object], Outcome]] = {
    "chacha20_poly1305_test": _aead_checker(
        12,
        lambda backend: backend.aead_chacha20poly1305_ietf_encrypt,
        lambda backend: backend.aead_chacha20poly1305_ietf_decrypt,
    ),
    "xchacha20_poly1305_test": _aead_checker(
        24,
        lambda backend: backend.aead_xchacha20poly1305_ietf_encrypt,
        lambda backend: backend.aead_xchacha20poly1305_ietf_decrypt,
    ),
    "x25519_test": _check_x25519,
    "ed25519_test": _check_ed25519_verify,
}


def run(argument: str) -> str:
    """Run every case of one Wycheproof file; see the module docstring for the JSON shapes."""
    request: object = json.loads(argument)
    name = _text(request, "name").removesuffix(".json")
    checker = _CHECKERS.get(name)
    if checker is None:
        raise ValueError(f"no Wycheproof checker for {name!r}; known: {sorted(_CHECKERS)}")
    backend = get_backend()
    tally = _Tally()
    for group in _list(_field(request, "data"), "testGroups"):
        for case in _list(group, "tests"):
            case_id = _field(case, "tcId")
            if not isinstance(case_id, int):
                raise TypeError("Wycheproof tcId is not an integer")
            label = _text(case, "result")
            try:
                outcome = checker(backend, group, case)
            except (_WrongOutput, _Crash) as finding:
                tally.fail(case_id, str(finding))
                continue
            if label == "acceptable":
                tally.acceptable += 1
            elif (label == "valid") == (outcome == "accepted") and label in {"valid", "invalid"}:
                tally.passed += 1
            else:
                tally.fail(case_id, f"{label} case was {outcome}")
    return json.dumps(
        {
            "backend": backend.name,
            "passed": tally.passed,
            "failed": tally.failed,
            "acceptable": tally.acceptable,
            "reasons": tally.reasons,
        },
        sort_keys=True,
    )

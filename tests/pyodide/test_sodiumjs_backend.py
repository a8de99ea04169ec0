"""The libsodium.js backend against PyNaCl, method by method, and its error contract.

Wycheproof covers the AEADs, X25519 and Ed25519 verification; this covers the rest of the seam
(key generation, signing, Argon2id, randomness) and how misuse and bad data are reported.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Final

import backend_probe
import pytest

if TYPE_CHECKING:
    from pyodide_host import GuestCall

PROBE_PATH: Final = Path(__file__).resolve().with_name("backend_probe.py")

# What the seam must raise for each case that does not succeed; every other case must succeed.
EXPECTED_ERRORS: Final = {
    "chacha_open_tampered": "AuthenticationFailed",
    "chacha_open_other_ad": "AuthenticationFailed",
    "chacha_open_too_short": "AuthenticationFailed",
    "xchacha_open_tampered": "AuthenticationFailed",
    "x25519_low_order": "AuthenticationFailed",
    "ed25519_verify_tampered": "AuthenticationFailed",
    "ed25519_verify_short_signature": "AuthenticationFailed",
    "chacha_seal_short_nonce": "ValueError",
    "chacha_seal_short_key": "ValueError",
    "chacha_open_long_nonce": "ValueError",
    "xchacha_seal_short_nonce": "ValueError",
    "x25519_short_public": "ValueError",
    "x25519_base_short_secret": "ValueError",
    "ed25519_short_seed": "ValueError",
    "ed25519_sign_short_secret_key": "ValueError",
    "ed25519_verify_short_public_key": "ValueError",
    "argon2id_short_salt": "ValueError",
    "argon2id_zero_opslimit": "ValueError",
    "argon2id_tiny_memlimit": "ValueError",
    "argon2id_short_output": "ValueError",
    "randombytes_negative": "ValueError",
}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _probe_in_pyodide(run_in_pyodide_node: GuestCall) -> dict[str, dict[str, str]]:
    files = {"backend_probe.py": PROBE_PATH.read_text(encoding="utf-8")}
    answer = json.loads(run_in_pyodide_node(files, "backend_probe", "run", "{}"))
    assert answer["backend"] == "libsodium.js"
    results: dict[str, dict[str, str]] = answer["results"]
    return results


def test_sodiumjs_backend_raises_documented_errors(run_in_pyodide_node: GuestCall) -> None:
    results = _probe_in_pyodide(run_in_pyodide_node)

    raised = {name: result["error"] for name, result in results.items() if "error" in result}

    assert raised == EXPECTED_ERRORS


def test_sodiumjs_backend_matches_pynacl_byte_for_byte(run_in_pyodide_node: GuestCall) -> None:
    succeeding = sorted(set(backend_probe.CASES) - set(EXPECTED_ERRORS))
    request = json.dumps({"cases": succeeding})
    native = json.loads(backend_probe.run(request))
    wasm = _probe_in_pyodide(run_in_pyodide_node)

    assert native["backend"] == "pynacl"
    assert {name: wasm[name] for name in succeeding} == native["results"]

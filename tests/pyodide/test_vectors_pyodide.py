"""The protocol vectors and the cross-backend check inside Pyodide (libsodium.js).

The same runner module that passes on CPython (tests/crypto/test_vectors.py) runs here, under
Node 20 for the full corpus and in headless Chromium as a smoke run, so both runtimes are held
to the same bytes. Then each runtime opens what the other sealed with fresh randomness.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import crossrun

from tests.conftest import VECTORS

if TYPE_CHECKING:
    from pyodide_host import GuestCall

GUEST_FILES = {
    "runner.py": (VECTORS / "runner.py").read_text(encoding="utf-8"),
    "crossrun.py": (VECTORS / "crossrun.py").read_text(encoding="utf-8"),
}
SEEDS = json.dumps({"owner_seed": "a5" * 32, "recipient_seed": "5a" * 32})


def _failures(results_json: str, expected: int) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = json.loads(results_json)
    assert len(results) == expected
    return [r for r in results if not r["ok"]]


def test_vectors_all_pass_in_pyodide_node(
    run_in_pyodide_node: GuestCall, vector_cases: list[dict[str, Any]]
) -> None:
    out = run_in_pyodide_node(GUEST_FILES, "runner", "run", json.dumps(vector_cases))
    assert not _failures(out, len(vector_cases))


def test_vectors_smoke_in_chromium(
    run_in_chromium: GuestCall, vector_cases: list[dict[str, Any]]
) -> None:
    # One case of every operation keeps the browser run short; Node runs the whole corpus.
    sample = list({case["op"]: case for case in vector_cases}.values())
    out = run_in_chromium(GUEST_FILES, "runner", "run", json.dumps(sample))
    assert not _failures(out, len(sample))


def test_cross_backend_cpython_seals_pyodide_opens(run_in_pyodide_node: GuestCall) -> None:
    bundle = crossrun.seal_samples(SEEDS)
    assert json.loads(bundle)["backend"] == "pynacl"
    opened = run_in_pyodide_node(GUEST_FILES, "crossrun", "open_samples", bundle)
    assert json.loads(opened) == crossrun.EXPECTED_OPENED


def test_cross_backend_pyodide_seals_cpython_opens(run_in_pyodide_node: GuestCall) -> None:
    bundle = run_in_pyodide_node(GUEST_FILES, "crossrun", "seal_samples", SEEDS)
    assert json.loads(bundle)["backend"] != "pynacl"
    assert json.loads(crossrun.open_samples(bundle)) == crossrun.EXPECTED_OPENED

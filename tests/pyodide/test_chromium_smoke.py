"""Smoke test: the browser runtime boots in a module Web Worker in headless Chromium.

The page is served with the production CSP (no 'unsafe-eval', wasm allowed), and the driver fails
on any CSP violation, so passing means Pyodide, msgspec, our wheel and libsodium.js all load and
the seam gives upstream's answers there. One cheap Wycheproof file keeps the test short.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest

if TYPE_CHECKING:
    from pyodide_host import GuestCall

PROJECT_DIR: Final = Path(__file__).resolve().parents[2]
RUNNER_PATH: Final = PROJECT_DIR / "tests" / "vectors" / "wycheproof_runner.py"
X25519_VECTORS: Final = (
    PROJECT_DIR.parent / "shared" / "vectors" / "wycheproof" / "x25519_test.json"
)
X25519_VALID: Final = 264
X25519_ACCEPTABLE: Final = 254

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_chromium_worker_runs_x25519_vectors_under_strict_csp(run_in_chromium: GuestCall) -> None:
    if not X25519_VECTORS.is_file():
        pytest.skip(
            f"Wycheproof vectors not found at {X25519_VECTORS} (the shared folder is absent)"
        )
    data = json.loads(X25519_VECTORS.read_text(encoding="utf-8"))
    request = json.dumps({"name": "x25519_test", "data": data})
    files = {"wycheproof_runner.py": RUNNER_PATH.read_text(encoding="utf-8")}

    result = json.loads(run_in_chromium(files, "wycheproof_runner", "run", request))

    assert result["backend"] == "libsodium.js"
    assert result["failed"] == [], result["reasons"]
    assert result["passed"] == X25519_VALID
    assert result["acceptable"] == X25519_ACCEPTABLE

"""Wycheproof vectors through the primitive seam inside Pyodide under Node (libsodium.js).

The runner file is shipped into Pyodide as source and calls the backend that ``get_backend``
chooses there, so this checks the wasm build of the seam against the same upstream vectors as
``tests/crypto/test_wycheproof.py`` checks PyNaCl.
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
WYCHEPROOF_DIR: Final = PROJECT_DIR.parent / "shared" / "vectors" / "wycheproof"

# Valid + invalid cases per file (the folder's README); "acceptable" cases are counted apart.
MINIMUM_PASSED: Final = {
    "chacha20_poly1305_test": 325,
    "xchacha20_poly1305_test": 315,
    "x25519_test": 264,
    "ed25519_test": 151,
}

# Each case boots Pyodide in a fresh Node process (a few seconds) before running the file.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.mark.parametrize("name", sorted(MINIMUM_PASSED))
def test_wycheproof_pyodide_backend_matches_upstream(
    name: str, run_in_pyodide_node: GuestCall
) -> None:
    vectors = WYCHEPROOF_DIR / f"{name}.json"
    if not vectors.is_file():
        pytest.skip(f"Wycheproof vectors not found at {vectors} (the shared folder is absent)")
    request = json.dumps({"name": name, "data": json.loads(vectors.read_text(encoding="utf-8"))})
    files = {"wycheproof_runner.py": RUNNER_PATH.read_text(encoding="utf-8")}

    result = json.loads(run_in_pyodide_node(files, "wycheproof_runner", "run", request))

    assert result["backend"] == "libsodium.js"
    assert result["failed"] == [], result["reasons"]
    assert result["passed"] >= MINIMUM_PASSED[name]

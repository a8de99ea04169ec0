"""Wycheproof vectors through the primitive seam on CPython (the PyNaCl backend).

The same runner runs inside Pyodide in ``tests/pyodide/test_wycheproof_pyodide.py``; together they
show both backends accept and reject exactly what upstream says they must.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest

if TYPE_CHECKING:
    from types import ModuleType

PROJECT_DIR: Final = Path(__file__).resolve().parents[2]
RUNNER_PATH: Final = PROJECT_DIR / "tests" / "vectors" / "wycheproof_runner.py"
# The vectors live in the shared folder beside the project and are never copied into it.
WYCHEPROOF_DIR: Final = PROJECT_DIR.parent / "shared" / "vectors" / "wycheproof"

# Cases per file that must pass (valid + invalid, per the folder's README); "acceptable" cases are
# counted apart. A smaller count means vectors went missing, which must not pass silently.
MINIMUM_PASSED: Final = {
    "chacha20_poly1305_test": 325,
    "xchacha20_poly1305_test": 315,
    "x25519_test": 264,
    "ed25519_test": 151,
}


def _load_runner() -> ModuleType:
    # Loaded by path: the runner is a standalone file that is also shipped into Pyodide as source.
    spec = importlib.util.spec_from_file_location("wycheproof_runner", RUNNER_PATH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(MINIMUM_PASSED))
def test_wycheproof_cpython_backend_matches_upstream(name: str) -> None:
    vectors = WYCHEPROOF_DIR / f"{name}.json"
    if not vectors.is_file():
        pytest.skip(f"Wycheproof vectors not found at {vectors} (the shared folder is absent)")
    runner = _load_runner()
    request = json.dumps({"name": name, "data": json.loads(vectors.read_text(encoding="utf-8"))})

    result = json.loads(runner.run(request))

    assert result["backend"] == "pynacl"
    assert result["failed"] == [], result["reasons"]
    assert result["passed"] >= MINIMUM_PASSED[name]

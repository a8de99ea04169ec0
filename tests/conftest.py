"""Shared test setup: the vector corpus and the stdlib-only runners beside it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "vectors"
WYCHEPROOF = ROOT.parent / "shared" / "vectors" / "wycheproof"

# The runners are plain modules so that Pyodide can load them as files; make them importable.
sys.path.insert(0, str(VECTORS))


def load_vectors() -> list[dict[str, Any]]:
    """Every vector case under tests/vectors/, in a stable order."""
    return [
        json.loads(path.read_text(encoding="utf-8")) for path in sorted(VECTORS.glob("*/*.json"))
    ]


@pytest.fixture(scope="session")
def vector_cases() -> list[dict[str, Any]]:
    """The vector corpus, read once."""
    cases = load_vectors()
    assert len(cases) >= 100, "the vector corpus is missing; run `just vectors`"
    return cases

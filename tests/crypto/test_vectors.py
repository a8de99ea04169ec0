"""The vector corpus on CPython (PyNaCl), and its reproducibility from the generator."""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

import generate
import runner

from tests.conftest import VECTORS

if TYPE_CHECKING:
    from pathlib import Path


def test_vectors_all_pass_on_cpython(vector_cases: list[dict[str, Any]]) -> None:
    results = json.loads(runner.run(json.dumps(vector_cases)))
    failed = [r for r in results if not r["ok"]]
    assert not failed, failed
    assert len(results) == len(vector_cases)


def test_vectors_cover_every_operation_and_error_layer(
    vector_cases: list[dict[str, Any]],
) -> None:
    ops = {case["op"] for case in vector_cases}
    assert ops == set(runner.OPERATIONS)
    expects = Counter(case["expect"] for case in vector_cases)
    for layer in (
        "MalformedEnvelope",
        "UnsupportedVersion",
        "ParametersRejected",
        "AuthenticationFailed",
        "NoMatchingKey",
        "TruncatedStream",
        "InvalidRecoveryKey",
    ):
        assert expects[layer] >= 1, layer
    assert expects["ok"] >= 40


def test_vectors_names_match_file_paths(vector_cases: list[dict[str, Any]]) -> None:
    paths = sorted(
        p.relative_to(VECTORS).with_suffix("").as_posix() for p in VECTORS.glob("*/*.json")
    )
    assert paths == sorted(case["name"] for case in vector_cases)


def test_vectors_generator_reproduces_every_byte(tmp_path: Path) -> None:
    cases = generate.build()
    generate.write(cases, tmp_path)
    fresh = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.glob("*/*.json")}
    stored = {p.relative_to(VECTORS): p.read_bytes() for p in VECTORS.glob("*/*.json")}
    assert fresh.keys() == stored.keys()
    changed = [str(k) for k in fresh if fresh[k] != stored[k]]
    assert not changed, f"run `just vectors` and commit: {changed}"


def test_vectors_index_in_spec_matches_corpus(vector_cases: list[dict[str, Any]]) -> None:
    spec = generate.SPEC.read_text(encoding="utf-8")
    assert generate.spec_index(spec) == generate.index_block(vector_cases), (
        "docs/protocol.md §12.5 is stale: run `just vectors` and commit"
    )

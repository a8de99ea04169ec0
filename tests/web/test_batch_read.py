"""The worker's own reader of a group of files (client/web/src/batch-read.ts), under Node.

It reads the server's answer into a buffer it keeps between groups, opens each file, and gives
a zip the CRC-32 of each plaintext. Whatever the answer holds beyond or short of the files asked
for, or a refusal, is a failure (the worker then reads through the Python core, which says
what went wrong); a later group never changes the files an earlier one gave.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tests" / "pyodide"))
from pyodide_host import require_node_runtime  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    if not (ROOT / "client" / "web" / "node_modules" / "typescript").is_dir():
        pytest.fail("client/web/node_modules is missing: run `just web`")
    run = subprocess.run(
        [require_node_runtime(), str(HERE / "batch_read_node.mjs"), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    answer: dict[str, Any] = json.loads(run.stdout)
    return answer


def _crcs(plaintexts: list[str]) -> list[int]:
    return [zlib.crc32(bytes.fromhex(text)) for text in plaintexts]


def test_a_group_gives_each_plaintext_and_its_crc(results: dict[str, Any]) -> None:
    expected = results["expected"]["first"]
    # Every vector that opens, the empty file among them, and some twice.
    assert len(expected) >= 8 and "" in expected
    assert results["first"] == {
        "plaintexts": expected,
        "crc32s": _crcs(expected),
        "keysWiped": True,
    }


def test_the_next_group_reuses_the_buffer_without_touching_the_last(
    results: dict[str, Any],
) -> None:
    expected = results["expected"]["second"]
    assert results["second"]["plaintexts"] == expected
    assert results["second"]["crc32s"] == _crcs(expected)
    assert results["firstAfterSecond"] is True


def test_a_body_that_is_not_a_byte_stream_is_read_whole(results: dict[str, Any]) -> None:
    expected = results["expected"]["first"][: len(results["notBytes"]["plaintexts"])]
    assert results["notBytes"]["plaintexts"] == expected
    assert results["notBytes"]["crc32s"] == _crcs(expected)
    assert results["notBytesLonger"] == {"ok": False, "error": "BatchFailure: length"}


def test_crcs_only_when_asked(results: dict[str, Any]) -> None:
    assert results["withoutCrc"]["crc32s"] is None
    assert results["withoutCrc"]["plaintexts"] == results["expected"]["first"][:2]


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("longer", "BatchFailure: length"),
        ("shorter", "BatchFailure: length"),
        ("refused", "BatchFailure: status 503"),
    ],
)
def test_an_answer_of_another_length_or_a_refusal_fails(
    results: dict[str, Any], case: str, error: str
) -> None:
    assert results[case] == {"ok": False, "error": error}

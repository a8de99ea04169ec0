"""The worker's own reader of a group of files (client/web/src/batch-read.ts), under Node.

It reads the server's answer into a buffer it keeps between groups and opens each file, for a
zip straight between the frames the page gave, with each file's CRC-32 in its frame. Whatever
the answer holds beyond or short of the files asked for, frames that do not fit, or a refusal
is a failure (the worker then reads through the Python core, which says what went wrong); a
later group never changes the files an earlier one gave.
"""

from __future__ import annotations

import json
import struct
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


def _framed(plaintexts: list[str]) -> str:
    """The run the harness's frames give: file k between k + 1 and 8 + k bytes of 0xAA, the
    tail's bytes 4 to 7 the file's CRC-32."""
    run = b""
    for k, text in enumerate(plaintexts):
        data = bytes.fromhex(text)
        tail = bytearray(b"\xaa" * (8 + k))
        tail[4:8] = struct.pack("<I", zlib.crc32(data))
        run += b"\xaa" * (k + 1) + data + bytes(tail)
    return run.hex()


def test_a_framed_group_is_one_run_of_entries_with_crcs(results: dict[str, Any]) -> None:
    expected = results["expected"]["first"]
    # Every vector that opens, the empty file among them, and some twice.
    assert len(expected) >= 8 and "" in expected
    assert results["first"] == {
        "framed": True,
        "buffers": [_framed(expected)],
        "crc32s": _crcs(expected),
        "keysWiped": True,
    }


def test_the_next_group_reuses_the_buffer_without_touching_the_last(
    results: dict[str, Any],
) -> None:
    expected = results["expected"]["second"]
    assert results["second"]["buffers"] == [_framed(expected)]
    assert results["second"]["crc32s"] == _crcs(expected)
    assert results["firstAfterSecond"] is True


def test_a_body_that_is_not_a_byte_stream_is_read_whole(results: dict[str, Any]) -> None:
    expected = results["expected"]["first"][:-2]
    assert results["notBytes"]["buffers"] == [_framed(expected)]
    assert results["notBytesLonger"] == {"ok": False, "error": "BatchFailure: length"}


def test_unframed_each_file_in_a_buffer_of_its_own(results: dict[str, Any]) -> None:
    assert results["unframed"] == {
        "framed": False,
        "buffers": results["expected"]["first"][:2],
        "crc32s": None,
        "keysWiped": True,
    }


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("longer", "BatchFailure: length"),
        ("shorter", "BatchFailure: length"),
        ("refused", "BatchFailure: status 503"),
        ("shortTail", "BatchFailure: frames"),
        ("tooFewFrames", "BatchFailure: frames"),
    ],
)
def test_a_wrong_answer_or_frames_fail(results: dict[str, Any], case: str, error: str) -> None:
    assert results[case] == {"ok": False, "error": error}


def test_batches_at_once_are_shared_with_the_helper_thread(results: dict[str, Any]) -> None:
    """Four batches read together through the worker's opener and its helper's (over a real
    MessageChannel, with the keys and buffers transferred): both open some, every answer whole."""
    shared = results["shared"]
    assert shared["local"] >= 1 and shared["helper"] >= 1
    assert shared["local"] + shared["helper"] == 4
    assert shared["answers"] == [
        {
            "framed": True,
            "buffers": [_framed(expected)],
            "crc32s": _crcs(expected),
            "keysWiped": True,
        }
        for expected in shared["expected"]
    ]


def test_a_file_changed_at_rest_fails_in_the_helper_by_its_error_name(
    results: dict[str, Any],
) -> None:
    assert results["helperTampered"] == {"ok": False, "error": "BatchFailure: AuthenticationFailed"}


def test_a_failed_helper_fails_its_batch_and_gets_no_more(results: dict[str, Any]) -> None:
    assert results["helperFailed"] == {"ok": False, "error": "BatchFailure: helper"}
    assert results["helperBroken"] is True
    expected = results["expected"]["first"]
    assert [answer["buffers"] for answer in results["afterHelperFailed"]] == [
        [_framed(expected[0:2])],
        [_framed(expected[1:3])],
    ]


def test_batches_are_opened_in_the_order_asked(results: dict[str, Any]) -> None:
    """The first batch's answer arrives after the second's; the one opener still opens it first
    (its reader is the one waiting)."""
    assert results["order"] == ["first", "second"]

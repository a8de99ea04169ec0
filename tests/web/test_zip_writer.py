"""The download's zip writer and CRC-32 (client/web/src/download), under Node.

Property tests: any set of files, in pieces of any size, gives a zip of exactly the length
announced up front, which Python's zipfile and Info-ZIP's unzip read back byte for byte with
the right CRCs, names and times. Zip64 records are exercised with the overflow limits lowered,
since a test cannot write 4 GiB.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import sys
import zipfile
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tests" / "pyodide"))
from pyodide_host import require_node_runtime  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.slow

MODIFIED_MS = 1_718_444_096_000  # 2024-06-15, a whole second
# The harness fixture is one process for the module, not per example.
EXAMPLES = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


class Harness:
    """One zip_harness.mjs process, asked one JSON line at a time."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        stdin: IO[str] | None = self.process.stdin
        stdout: IO[str] | None = self.process.stdout
        assert stdin is not None and stdout is not None
        stdin.write(json.dumps(request) + "\n")
        stdin.flush()
        line = stdout.readline()
        assert line, "the harness stopped"
        answer: dict[str, Any] = json.loads(line)
        return answer


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    if not (ROOT / "client" / "web" / "node_modules" / "typescript").is_dir():
        pytest.fail("client/web/node_modules is missing: run `just web`")
    node = require_node_runtime()
    process = subprocess.Popen(
        [node, str(HERE / "zip_harness.mjs"), str(ROOT)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield Harness(process)
    finally:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.close()
        process.wait(30)
        process.stdout.close()


def _content(size: int, seed: int) -> bytes:
    return bytes((seed + 31 * i) & 255 for i in range(size))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=300), split=st.integers(0, 300), offset=st.integers(0, 7))
def test_crc32_is_zlibs_and_continues(
    harness: Harness, data: bytes, split: int, offset: int
) -> None:
    whole = harness.ask({"crc": base64.b64encode(data).decode(), "offset": offset})["crc"]
    assert whole == zlib.crc32(data)
    head, tail = data[:split], data[split:]
    first = harness.ask({"crc": base64.b64encode(head).decode()})["crc"]
    then = harness.ask({"crc": base64.b64encode(tail).decode(), "from": first})["crc"]
    assert then == whole


names = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\"),
    min_size=1,
    max_size=12,
)
files = st.lists(
    st.fixed_dictionaries(
        {
            "folder": names,
            "leaf": names,
            "size": st.integers(0, 3000),
            "seed": st.integers(0, 255),
            "pieces": st.lists(st.integers(0, 1500), max_size=4),
        }
    ),
    max_size=6,
    unique_by=lambda f: (f["folder"], f["leaf"]),
)
limits = st.one_of(
    st.none(),
    st.fixed_dictionaries({"u32": st.integers(1, 6000), "u16": st.integers(1, 7)}),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(chosen=files, limits=limits)
def test_zip_reads_back_at_the_announced_length(
    harness: Harness, chosen: list[dict[str, Any]], limits: dict[str, int] | None
) -> None:
    entries = [
        {"name": f"{f['folder']}/{f['leaf']}.dcm", **{k: f[k] for k in ("size", "seed", "pieces")}}
        for f in chosen
    ]
    answer = harness.ask({"files": entries, "modified": MODIFIED_MS, "limits": limits})
    data = base64.b64decode(answer["zip"])
    assert len(data) == answer["length"]
    # Zip times are local times, in the harness as here.
    when = datetime.fromtimestamp(MODIFIED_MS / 1000, tz=UTC).astimezone().timetuple()[:6]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        infos = archive.infolist()
        assert [i.filename for i in infos] == [e["name"] for e in entries]
        for info, entry in zip(infos, entries, strict=True):
            assert info.compress_type == zipfile.ZIP_STORED
            assert info.flag_bits & 0x800  # UTF-8 name
            assert info.date_time == when
            assert info.external_attr >> 16 == 0o100644
            assert archive.read(info) == _content(entry["size"], entry["seed"])


def _with_runs(entries: list[dict[str, Any]], cuts: list[int], mode: str) -> None:
    """Mark runs of consecutive entries: a run starts at each cut (and at the first entry)."""
    starts = sorted({0, *(c % len(entries) for c in cuts)})
    for start, end in zip(starts, [*starts[1:], len(entries)], strict=True):
        entries[start]["run"] = {"count": end - start, "mode": mode}


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    chosen=files.filter(bool),
    cuts=st.lists(st.integers(0, 5), max_size=3),
    mode=st.sampled_from(["framed", "declined"]),
    limits=limits,
)
def test_framed_runs_give_the_same_zip(
    harness: Harness,
    chosen: list[dict[str, Any]],
    cuts: list[int],
    mode: str,
    limits: dict[str, int] | None,
) -> None:
    """Runs the worker frames itself, or declines to, make the very same bytes."""
    entries = [
        {"name": f"{index}/{f['leaf']}", **{k: f[k] for k in ("size", "seed", "pieces")}}
        for index, f in enumerate(chosen)
    ]
    plain = harness.ask({"files": entries, "modified": MODIFIED_MS, "limits": limits})
    _with_runs(entries, cuts, mode)
    framed = harness.ask({"files": entries, "modified": MODIFIED_MS, "limits": limits})
    assert "zip" in plain
    assert framed == plain


@pytest.mark.parametrize("mode", ["wrongCrc", "short"])
def test_a_run_that_is_not_what_the_zip_needs_stops_it(harness: Harness, mode: str) -> None:
    entries = [{"name": f"s/{k}.dcm", "size": 100 + k, "seed": k, "pieces": []} for k in range(3)]
    entries[1]["run"] = {"count": 2, "mode": mode}
    answer = harness.ask({"files": entries, "modified": MODIFIED_MS, "limits": None})
    assert answer == {
        "error": "Error: The files from s/1.dcm on did not come as the zip needs them."
    }


def test_a_run_past_the_last_file_stops_the_zip(harness: Harness) -> None:
    entries = [
        {
            "name": "a.dcm",
            "size": 10,
            "seed": 1,
            "pieces": [],
            "run": {"count": 2, "mode": "framed"},
        }
    ]
    answer = harness.ask({"files": entries, "modified": MODIFIED_MS, "limits": None})
    assert answer == {"error": "Error: The files from a.dcm on did not come as the zip needs them."}


@pytest.mark.skipif(shutil.which("unzip") is None, reason="Info-ZIP unzip is not installed")
@pytest.mark.parametrize("limits", [None, {"u32": 700, "u16": 2}])
def test_info_zip_tests_the_zip(harness: Harness, tmp_path: Path, limits: Any) -> None:
    entries = [
        {"name": f"series/{k}.dcm", "size": 400 * k, "seed": k, "pieces": [5, 64]} for k in range(5)
    ]
    answer = harness.ask({"files": entries, "modified": MODIFIED_MS, "limits": limits})
    path = tmp_path / "study.zip"
    path.write_bytes(base64.b64decode(answer["zip"]))
    tested = subprocess.run(["unzip", "-t", str(path)], capture_output=True, text=True, check=False)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "No errors detected" in tested.stdout


def test_a_file_of_another_size_stops_the_zip(harness: Harness) -> None:
    for actual in (99, 101):
        entries = [{"name": "a.dcm", "size": 100, "actual": actual, "seed": 0, "pieces": []}]
        answer = harness.ask({"files": entries, "modified": MODIFIED_MS, "limits": None})
        assert answer == {"error": "Error: a.dcm is not the size announced for it."}

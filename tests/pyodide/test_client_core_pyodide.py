"""The client core in Pyodide: the browser wheel scans and seals as CPython does, byte for byte."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import TYPE_CHECKING, Final

import client_probe
import pytest
from pydicom.data import get_testdata_file

if TYPE_CHECKING:
    from pyodide_host import GuestCall

PROBE_PATH: Final = Path(__file__).resolve().with_name("client_probe.py")
# Small files in several transfer syntaxes (explicit and implicit little endian, big endian,
# deflate, RLE, JPEG, JPEG 2000), an index, and a non-DICOM file beside them.
SAMPLES: Final = (
    "CT_small.dcm",
    "MR_small_bigendian.dcm",
    "image_dfl.dcm",
    "MR_small_RLE.dcm",
    "JPEG2000.dcm",
    "rtplan.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "DICOMDIR",
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _request() -> str:
    files = {
        name: base64.b64encode(Path(str(get_testdata_file(name))).read_bytes()).decode()
        for name in SAMPLES
    }
    files["notes.txt"] = base64.b64encode(b"not an image").decode()
    return json.dumps({"files": files, "study_key": "11" * 32, "file_id": "22" * 16})


def test_scan_and_seal_match_cpython_in_node(run_in_pyodide_node: GuestCall) -> None:
    request = _request()
    native = json.loads(client_probe.run(request))
    files = {"client_probe.py": PROBE_PATH.read_text(encoding="utf-8")}
    wasm = json.loads(run_in_pyodide_node(files, "client_probe", "run", request))

    assert wasm == native
    assert native["unsupported"] == ["notes.txt"]
    assert native["indexes"] == ["DICOMDIR"]
    assert len(native["instances"]) == len(SAMPLES) - 1


def test_scan_and_seal_match_cpython_in_chromium(run_in_chromium: GuestCall) -> None:
    request = _request()
    files = {"client_probe.py": PROBE_PATH.read_text(encoding="utf-8")}
    wasm = json.loads(run_in_chromium(files, "client_probe", "run", request))
    assert wasm == json.loads(client_probe.run(request))


@pytest.mark.parametrize("runtime", ["node", "chromium"])
def test_whole_file_sealing_hashed_by_webcrypto_gives_the_streamed_entries(
    runtime: str, run_in_pyodide_node: GuestCall, run_in_chromium: GuestCall
) -> None:
    run = run_in_pyodide_node if runtime == "node" else run_in_chromium
    files = {"client_probe.py": PROBE_PATH.read_text(encoding="utf-8")}
    answer = json.loads(run(files, "client_probe", "whole", _request()))
    assert answer.pop("empty") is True
    assert len(answer) == len(SAMPLES) - 1
    assert all(answer.values()), answer

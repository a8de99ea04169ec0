"""The CLI's scan in a child process: the same report and callbacks as the in-process scan."""

from __future__ import annotations

import io
import shutil
import signal
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydicom.data import get_testdata_file

from securepacs.client.dicom import scan_folder
from securepacs.client.scan_process import (
    Done,
    Failed,
    Found,
    Message,
    Progress,
    ScanFailed,
    ScanProcess,
    decode_frame,
    encode_frame,
)
from securepacs.client.scanned import Instance, ScanProgress, ScanReport, StudyAttributes

if TYPE_CHECKING:
    from pathlib import Path


def _started(folder: Path) -> ScanProcess:
    process = ScanProcess.start(folder)
    assert process is not None, "python -m securepacs.client.scan_worker could not start"
    return process


def test_child_reports_what_the_in_process_scan_reports(library: Path) -> None:
    expected_progress: list[ScanProgress] = []
    expected_found: list[tuple[Instance, StudyAttributes]] = []
    expected = scan_folder(
        library, expected_progress.append, on_instance=lambda i, a: expected_found.append((i, a))
    )
    progress: list[ScanProgress] = []
    found: list[tuple[Instance, StudyAttributes]] = []
    scanner = _started(library)
    try:
        report = scanner.scan(
            library, progress.append, on_instance=lambda i, a: found.append((i, a))
        )
    finally:
        scanner.close()
    assert report == expected
    assert progress == expected_progress
    assert found == expected_found
    assert report.parsed >= 140


def test_any_folder_name_reaches_the_child(tmp_path: Path) -> None:
    folder = tmp_path / "Patient Ü\nline two"
    folder.mkdir()
    shutil.copyfile(str(get_testdata_file("CT_small.dcm")), folder / "ct.dcm")
    scanner = _started(folder)
    try:
        with pytest.raises(ValueError, match="another folder"):
            scanner.scan(folder.parent)
        report = scanner.scan(folder)
    finally:
        scanner.close()
    assert report.parsed == 1
    [study] = report.studies.values()
    [[instance]] = study.series.values()
    assert instance.path == str(folder / "ct.dcm")


def test_a_child_that_dies_is_reported_with_what_to_do(library: Path) -> None:
    scanner = _started(library)
    # Long before it has imported pydicom, let alone scanned anything.
    scanner._process.send_signal(signal.SIGKILL)
    try:
        with pytest.raises(ScanFailed, match=r"stopped unexpectedly.*Run the upload again"):
            scanner.scan(library)
    finally:
        scanner.close()


def test_close_stops_the_child_whatever_it_is_doing(library: Path) -> None:
    scanner = _started(library)
    scanner.close()
    assert scanner._process.returncode is not None


_uid = st.from_regex(r"[1-9][0-9]{0,8}(\.[0-9]{1,8}){1,5}", fullmatch=True)
_text = st.text(max_size=40)
_instances = st.builds(
    Instance,
    path=_text,
    size=st.integers(min_value=0, max_value=2**40),
    study_instance_uid=_uid,
    series_instance_uid=_uid,
    sop_instance_uid=_uid,
    modality=_text,
    transfer_syntax=_uid,
    derived_uids=st.booleans(),
)
_attributes = st.builds(
    StudyAttributes,
    study_instance_uid=_uid,
    patient_name=_text,
    patient_id=_text,
    modalities=st.lists(_text, max_size=3).map(tuple),
)
_progress = st.builds(
    ScanProgress,
    found=st.integers(0, 10**6),
    parsed=st.integers(0, 10**6),
    unsupported=st.integers(0, 10**6),
    broken=st.integers(0, 10**6),
)
_messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(Found, _instances, _attributes, _progress),
    st.builds(Progress, _progress),
    st.builds(Done, st.builds(ScanReport, studies=st.just({}), found=st.integers(0, 99))),
    st.builds(Failed, _text),
)


@given(st.lists(_messages, max_size=8))
def test_frames_round_trip(messages: list[Message]) -> None:
    stream = io.BytesIO(b"".join(encode_frame(message) for message in messages))
    decoded: list[Message] = []
    while (message := decode_frame(stream)) is not None:
        decoded.append(message)
    assert decoded == messages


@given(_messages, st.data())
def test_a_cut_or_damaged_frame_is_refused(message: Message, data: st.DataObject) -> None:
    frame = encode_frame(message)
    cut = data.draw(st.integers(min_value=1, max_value=len(frame) - 1))
    with pytest.raises(ScanFailed):
        decode_frame(io.BytesIO(frame[:cut]))
    with pytest.raises(ScanFailed):
        decode_frame(io.BytesIO(len(b"\xc1").to_bytes(4, "big") + b"\xc1"))

"""Scanning folders of DICOM on the client: every file classified, studies grouped, headers read."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydicom.data import get_testdata_file

from securepacs.client.dicom import read_instance, scan_folder

if TYPE_CHECKING:
    from securepacs.client.scanned import ScanProgress


def test_scan_classifies_every_file_and_reports_progress(library: Path) -> None:
    seen: list[ScanProgress] = []
    report = scan_folder(library, seen.append)
    files = [p for p in library.rglob("*") if p.is_file()]
    assert report.found == len(files)
    counted = report.parsed + len(report.unsupported) + len(report.broken) + len(report.indexes)
    assert counted == report.found
    assert str(library / "notes.txt") in report.unsupported
    assert str(library / "empty.dcm") in report.unsupported
    assert any(path.endswith("truncated.dcm") for path, _ in report.broken)
    assert report.indexes, "pydicom's DICOMDIR test files are recognised as indexes"
    assert report.parsed >= 140
    assert len(seen) == report.found
    assert seen[-1] == report.progress()
    assert [p.found for p in seen] == list(range(1, report.found + 1))


def test_scan_groups_instances_by_study_and_series(library: Path) -> None:
    report = scan_folder(library)
    instances = [i for study in report.studies.values() for s in study.series.values() for i in s]
    assert len(instances) == report.parsed
    assert len({i.sop_instance_uid for i in instances}) <= len(instances)
    for uid, study in report.studies.items():
        assert study.attributes.study_instance_uid == uid
        for series_uid, members in study.series.items():
            assert all(i.series_instance_uid == series_uid for i in members)
            assert all(i.study_instance_uid == uid for i in members)


def test_read_instance_extracts_the_worklist_fields() -> None:
    read = read_instance(Path(str(get_testdata_file("CT_small.dcm"))))
    assert read is not None
    instance, attributes = read
    assert attributes.patient_name == "CompressedSamples^CT1"
    assert attributes.patient_id == "1CT1"
    assert attributes.study_date == "20040119"
    assert attributes.modalities == ("CT",)
    assert instance.modality == "CT"
    assert instance.transfer_syntax == "1.2.840.10008.1.2.1"
    assert instance.size == Path(str(get_testdata_file("CT_small.dcm"))).stat().st_size

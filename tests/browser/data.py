"""Folders the browser tests upload: pydicom's test files, a canary study and a text file."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Final

import pydicom
from pydicom.data import get_testdata_file, get_testdata_files
from pydicom.uid import generate_uid

# The canary study: values that must never reach the server in any form (ZK-1), and a row
# that each search filter finds on its own.
CANARY: Final = {
    "PatientName": "Zkcanary^Browser",
    "PatientID": "ZKCANARY-7731",
    "PatientSex": "F",
    "AccessionNumber": "ACCZK-4410",
    "ReferringPhysicianName": "Sentinel^Referrer",
    "StudyDate": "20240615",
    "StudyDescription": "Canary study description",
}
CANARY_UID: Final = "1.2.826.0.1.3680043.10.1234.777.1"


def write_canary(target: Path, *, uid: str = CANARY_UID, **values: str) -> None:
    """CT_small.dcm rewritten as the canary study (new study and instance UIDs)."""
    dataset = pydicom.dcmread(str(get_testdata_file("CT_small.dcm")))
    for keyword, value in {**CANARY, **values}.items():
        setattr(dataset, keyword, value)
    dataset.StudyInstanceUID = uid
    dataset.SeriesInstanceUID = generate_uid()
    dataset.SOPInstanceUID = generate_uid()
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    target.parent.mkdir(parents=True, exist_ok=True)
    dataset.save_as(str(target), enforce_file_format=True)


def write_upload_folder(root: Path) -> None:
    """Every file pydicom ships, in three subfolders; the canary; a text file."""
    for index, source in enumerate(p for p in map(Path, get_testdata_files()) if p.is_file()):
        target = root / f"set{index % 3}" / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            target = target.with_name(f"{index}-{source.name}")
        shutil.copyfile(source, target)
    write_canary(root / "canary" / "canary.dcm")
    (root / "README.txt").write_text("Not a DICOM file: the upload counts it as unsupported.\n")


def write_small_folder(root: Path) -> None:
    """Three studies of one file each, and a text file."""
    for name in ("MR_small.dcm", "rtplan.dcm"):
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(str(get_testdata_file(name)), target)
    write_canary(root / "canary.dcm")
    (root / "notes.txt").write_text("not an image\n")

"""Reading DICOM on the client: scan a folder, separate the worklist attributes, group studies.

Only headers are read (pixel data is skipped), so scanning a large study costs little memory.
Files that are not DICOM are counted as unsupported and skipped; files that look like DICOM but
cannot be read are reported by path with a reason; DICOMDIR index files are recognised and not
uploaded (the files they list are found by the scan itself). The attributes extracted here are
exactly the worklist fields of the user manual; they are encrypted before anything leaves.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pydicom
from pydicom.errors import InvalidDicomError

from securepacs.client.scanned import (
    Instance,
    ScanProgress,
    ScanReport,
    StudyAttributes,
    StudyScan,
    merge_attributes,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from pydicom.dataset import Dataset

__all__ = ("derived_uid", "read_instance", "scan_folder")

DICOMDIR_SOP_CLASS: Final = "1.2.840.10008.1.3.10"
# The UIDs that place an instance in a study; a file lacking some gets them derived (below).
_REQUIRED: Final = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
# A file without a preamble is taken as DICOM only if it parses into this many known elements:
# forced parsing of arbitrary bytes seldom yields even one.
_BARE_DATASET_MIN_ELEMENTS: Final = 3


def _text(dataset: Dataset, keyword: str) -> str:
    value = dataset.get(keyword, "")
    return str(value).strip() if value is not None else ""


def _plausible_bare_dataset(dataset: Dataset) -> bool:
    if all(keyword in dataset for keyword in _REQUIRED):
        return True
    elements = list(dataset.keys())
    known = [tag for tag in elements if not tag.is_private and tag.group in (0x0008, 0x0010)]
    return (
        len(elements) >= _BARE_DATASET_MIN_ELEMENTS
        and len(known) >= _BARE_DATASET_MIN_ELEMENTS
        and all(pydicom.datadict.dictionary_has_tag(tag) or tag.is_private for tag in elements)
    )


def _uid(dataset: Dataset, keyword: str) -> str:
    # A UID that breaks the UI rules (digits and dots, at most 64) cannot go in a manifest.
    value = _text(dataset, keyword).rstrip("\x00 ")
    valid = 0 < len(value) <= 64 and all(c.isdigit() or c == "." for c in value)
    return value if valid else ""


def _read_header(path: Path) -> Dataset:
    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except InvalidDicomError:
        # No preamble: accept only what parses as a dataset of known standard elements.
        try:
            dataset = pydicom.dcmread(path, stop_before_pixels=True, force=True)
            plausible = _plausible_bare_dataset(dataset)
        except Exception:  # noqa: BLE001 -- forced parsing of non-DICOM fails in many ways
            plausible = False
        if not plausible:
            raise
        return dataset


def _complete_dataset(path: Path) -> bool:
    # pydicom reads a cut-off file without complaint; before standing in for missing UIDs, read
    # the whole file and check that its last element holds as many bytes as it declares.
    dataset = pydicom.dcmread(path, force=True)
    if not len(dataset):
        return False
    last = dataset.get_item(list(dataset.keys())[-1])
    value = getattr(last, "value", None)
    length = getattr(last, "length", None)
    undefined = 0xFFFFFFFF
    if isinstance(value, bytes) and isinstance(length, int) and length != undefined:
        return len(value) == length
    return True


def derived_uid(kind: str, path: Path) -> str:
    """A stand-in UID for a file that lacks one: ``2.25.`` and a hash of the file's bytes.

    The same file always gets the same UID, so uploading it again finds the stored copy; files
    without a StudyInstanceUID each become a study of their own rather than being dropped.
    """
    digest = hashlib.blake2b(digest_size=16, person=kind.encode("ascii")[:16])
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return f"2.25.{int.from_bytes(digest.digest(), 'big')}"


def read_instance(path: Path) -> tuple[Instance, StudyAttributes] | None:
    """Read one file's header; None for a DICOMDIR index.

    Raises:
        InvalidDicomError: not a DICOM file.
        Exception: a file that claims to be DICOM but cannot be read (the reason is the type).
    """
    # Values are decoded lazily, so pydicom's warnings about tolerated oddities come from here
    # too; the scan reports files on its own terms.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _read_instance(path)


def _read_instance(path: Path) -> tuple[Instance, StudyAttributes] | None:
    dataset = _read_header(path)
    meta = getattr(dataset, "file_meta", None)
    sop_class = _text(meta, "MediaStorageSOPClassUID") if meta is not None else ""
    if sop_class == DICOMDIR_SOP_CLASS or "DirectoryRecordSequence" in dataset:
        return None
    transfer_syntax = _text(meta, "TransferSyntaxUID") if meta is not None else ""
    uids = {keyword: _uid(dataset, keyword) for keyword in _REQUIRED}
    if not uids["SOPInstanceUID"] and meta is not None:
        uids["SOPInstanceUID"] = _uid(meta, "MediaStorageSOPInstanceUID")
    derived = not all(uids.values())
    if derived and not _complete_dataset(path):
        raise InvalidDicomError("no study, series or instance UID, and cut short")
    for keyword, kind in zip(_REQUIRED, ("study", "series", "instance"), strict=True):
        uids[keyword] = uids[keyword] or derived_uid(kind, path)
    instance = Instance(
        path=str(path),
        size=path.stat().st_size,
        study_instance_uid=uids["StudyInstanceUID"],
        series_instance_uid=uids["SeriesInstanceUID"],
        sop_instance_uid=uids["SOPInstanceUID"],
        modality=_text(dataset, "Modality"),
        transfer_syntax=transfer_syntax,
        derived_uids=derived,
    )
    attributes = StudyAttributes(
        study_instance_uid=instance.study_instance_uid,
        patient_name=_text(dataset, "PatientName"),
        patient_id=_text(dataset, "PatientID"),
        patient_sex=_text(dataset, "PatientSex"),
        accession_number=_text(dataset, "AccessionNumber"),
        referring_physician=_text(dataset, "ReferringPhysicianName"),
        study_date=_text(dataset, "StudyDate"),
        study_time=_text(dataset, "StudyTime"),
        study_description=_text(dataset, "StudyDescription"),
        modalities=(instance.modality,) if instance.modality else (),
    )
    return instance, attributes


def _files(folder: Path) -> Iterator[Path]:
    for root, directories, names in os.walk(folder):
        directories.sort()
        for name in sorted(names):
            yield Path(root) / name


def _has_preamble(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(128)
        return handle.read(4) == b"DICM"


def scan_folder(
    folder: Path,
    on_progress: Callable[[ScanProgress], None] | None = None,
    *,
    on_instance: Callable[[Instance, StudyAttributes], None] | None = None,
) -> ScanReport:
    """Scan ``folder`` recursively and group what it holds by study and series.

    ``on_instance`` hears of each readable file as soon as it is read, so an upload can start
    before the scan ends.
    """
    report = ScanReport(studies={})
    for path in _files(folder):
        if not path.is_file():
            continue
        report.found += 1
        try:
            read = read_instance(path)
        except InvalidDicomError:
            if _has_preamble(path):
                # It says DICOM but lacks what places it in a study: damaged or cut short.
                report.broken.append((str(path), "IncompleteDicom"))
            else:
                report.unsupported.append(str(path))
        except Exception as error:  # noqa: BLE001 -- any reader failure is "broken", with its type
            report.broken.append((str(path), type(error).__name__))
        else:
            if read is None:
                report.indexes.append(str(path))
            else:
                instance, attributes = read
                report.parsed += 1
                study = report.studies.get(instance.study_instance_uid)
                if study is None:
                    study = StudyScan(attributes=attributes, series={})
                    report.studies[instance.study_instance_uid] = study
                else:
                    study.attributes = merge_attributes(study.attributes, attributes)
                study.series.setdefault(instance.series_instance_uid, []).append(instance)
                if on_instance is not None:
                    on_instance(instance, attributes)
        if on_progress is not None:
            on_progress(report.progress())
    return report

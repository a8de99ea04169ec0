"""What a folder scan yields: instances, study attributes, the report and its progress.

Plain data, without pydicom: the uploading process (and the browser's UI side) handles these
while the reading itself (client/dicom.py) may run elsewhere, in the CLI's scan process.
"""

from __future__ import annotations

import msgspec

__all__ = (
    "Instance",
    "ScanProgress",
    "ScanReport",
    "StudyAttributes",
    "StudyScan",
    "merge_attributes",
)


class StudyAttributes(msgspec.Struct, frozen=True, kw_only=True):
    """The worklist fields of one study (plaintext: it exists only on the client)."""

    study_instance_uid: str
    patient_name: str = ""
    patient_id: str = ""
    patient_sex: str = ""
    accession_number: str = ""
    referring_physician: str = ""
    study_date: str = ""
    study_time: str = ""
    study_description: str = ""
    modalities: tuple[str, ...] = ()


class Instance(msgspec.Struct, frozen=True, kw_only=True):
    """One readable DICOM file."""

    path: str
    size: int
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    modality: str
    transfer_syntax: str
    # True when the file lacks a study, series or instance UID and ours stand in (derived_uid).
    derived_uids: bool = False


class StudyScan(msgspec.Struct, kw_only=True):
    """A study found on disk: its attributes and its instances grouped by series."""

    attributes: StudyAttributes
    series: dict[str, list[Instance]]

    @property
    def instance_count(self) -> int:
        """How many files the study has."""
        return sum(len(instances) for instances in self.series.values())


class ScanProgress(msgspec.Struct, frozen=True, kw_only=True):
    """The counts the upload panel shows while scanning."""

    found: int
    parsed: int
    unsupported: int
    broken: int


class ScanReport(msgspec.Struct, kw_only=True):
    """Everything a scan found."""

    studies: dict[str, StudyScan]
    found: int = 0
    parsed: int = 0
    unsupported: list[str] = msgspec.field(default_factory=list)
    broken: list[tuple[str, str]] = msgspec.field(default_factory=list)
    indexes: list[str] = msgspec.field(default_factory=list)

    def progress(self) -> ScanProgress:
        """The current counts."""
        return ScanProgress(
            found=self.found,
            parsed=self.parsed,
            unsupported=len(self.unsupported),
            broken=len(self.broken),
        )


def merge_attributes(first: StudyAttributes, more: StudyAttributes) -> StudyAttributes:
    """One study seen twice (two files, or stored and scanned): first values win, modalities add.

    Instances of one study repeat its attributes; where the first lacks a value, the other's
    is kept.
    """
    fields = {
        field: getattr(first, field) or getattr(more, field)
        for field in StudyAttributes.__struct_fields__
        if field != "modalities"
    }
    return StudyAttributes(
        **fields, modalities=tuple(sorted(set(first.modalities) | set(more.modalities)))
    )

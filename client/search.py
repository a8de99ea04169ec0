"""Search over decrypted study attributes, with the manual's fields and date presets.

The server cannot search what it cannot read: the client decrypts the metadata boxes it may
open and filters them here. Matching follows what people expect from a PACS worklist: names and
text fields are case-insensitive, a ``*`` in the patient name is a wildcard (without one the
name matches from the start of any name component), identifiers match exactly after trimming,
and a study date filter is an inclusive range that the presets compute from today.
"""

from __future__ import annotations

import fnmatch
from datetime import date, timedelta
from typing import TYPE_CHECKING, Final, Literal, get_args

import msgspec

if TYPE_CHECKING:
    from collections.abc import Iterable

    from securepacs.client.scanned import StudyAttributes

__all__ = (
    "DATE_PRESETS",
    "StudyFilter",
    "WorklistIndex",
    "date_range",
    "matches",
    "search",
    "sort_key",
)

DatePreset = Literal[
    "today",
    "yesterday",
    "this_week",
    "last_week",
    "this_month",
    "last_month",
    "this_year",
    "last_year",
]
DATE_PRESETS: Final[tuple[DatePreset, ...]] = get_args(DatePreset)
SortField = Literal["patient_name", "patient_id", "study_date", "accession_number", "modalities"]


class StudyFilter(msgspec.Struct, frozen=True, kw_only=True):
    """The Studies tab's filters; empty fields do not filter."""

    patient_name: str = ""
    patient_id: str = ""
    patient_sex: str = ""
    accession_number: str = ""
    referring_physician: str = ""
    modality: str = ""
    date_preset: DatePreset | None = None
    date_from: date | None = None
    date_to: date | None = None


def _month_start(day: date) -> date:
    return day.replace(day=1)


def date_range(filter_: StudyFilter, today: date) -> tuple[date | None, date | None]:
    """The inclusive study-date range of a filter (a preset wins over a custom range)."""
    preset = filter_.date_preset
    if preset is None:
        return filter_.date_from, filter_.date_to
    week_start = today - timedelta(days=today.weekday())
    ranges: dict[DatePreset, tuple[date, date]] = {
        "today": (today, today),
        "yesterday": (today - timedelta(days=1), today - timedelta(days=1)),
        "this_week": (week_start, today),
        "last_week": (week_start - timedelta(days=7), week_start - timedelta(days=1)),
        "this_month": (_month_start(today), today),
        "last_month": (
            _month_start(_month_start(today) - timedelta(days=1)),
            _month_start(today) - timedelta(days=1),
        ),
        "this_year": (today.replace(month=1, day=1), today),
        "last_year": (date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)),
    }
    return ranges[preset]


def _study_date(value: str) -> date | None:
    # DICOM DA is YYYYMMDD; anything else (empty, partial, garbage) has no date to match.
    if len(value) != 8 or not value.isdigit():
        return None
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return None


def _name_matches(pattern: str, name: str) -> bool:
    pattern, name = pattern.strip().casefold(), name.casefold()
    if "*" in pattern or "?" in pattern:
        return fnmatch.fnmatchcase(name, pattern)
    # Without a wildcard: any name component (family, given...) starting with the text.
    components = name.replace("^", " ").split()
    return name.startswith(pattern) or any(c.startswith(pattern) for c in components)


def _person_text(value: str) -> str:
    # A person name as typed or as stored (DICOM PN: components joined by ^, trailing ^s).
    return " ".join(value.replace("^", " ").casefold().split())


def matches(attributes: StudyAttributes, filter_: StudyFilter, today: date) -> bool:
    """Whether a study's attributes satisfy every filter that is set."""
    if filter_.patient_name and not _name_matches(filter_.patient_name, attributes.patient_name):
        return False
    exact = (
        (filter_.patient_id, attributes.patient_id),
        (filter_.accession_number, attributes.accession_number),
        (filter_.patient_sex, attributes.patient_sex),
    )
    if any(wanted and wanted.strip().casefold() != have.casefold() for wanted, have in exact):
        return False
    physician = _person_text(filter_.referring_physician)
    if physician and physician not in _person_text(attributes.referring_physician):
        return False
    modality = filter_.modality.strip().upper()
    if modality and modality not in {m.upper() for m in attributes.modalities}:
        return False
    start, end = date_range(filter_, today)
    if start is not None or end is not None:
        day = _study_date(attributes.study_date)
        if day is None or (start is not None and day < start) or (end is not None and day > end):
            return False
    return True


def sort_key(attributes: StudyAttributes, field: SortField) -> tuple[str, str]:
    """A key for sorting results by a column (ties broken by Study Instance UID)."""
    value = getattr(attributes, field)
    text = " ".join(value) if isinstance(value, tuple) else str(value)
    return text.casefold(), attributes.study_instance_uid


def search(
    studies: Iterable[StudyAttributes],
    filter_: StudyFilter,
    today: date,
    *,
    sort: SortField = "study_date",
    descending: bool = True,
) -> list[StudyAttributes]:
    """The matching studies, sorted (newest first by default)."""
    found = [s for s in studies if matches(s, filter_, today)]
    return sorted(found, key=lambda s: sort_key(s, sort), reverse=descending)


class WorklistIndex:
    """Decrypted rows with lookup tables for the exact-match fields, built once per load.

    A worklist of 100,000 studies is searched many times after it was opened; identifiers and
    modalities then narrow the candidates by dictionary lookups instead of a pass over every
    row. The tables only preselect: every candidate still goes through :func:`matches`, so the
    results are those of :func:`search` by construction.
    """

    def __init__(self, studies: Iterable[StudyAttributes]) -> None:
        self.studies = list(studies)
        self._tables: dict[str, dict[str, list[int]]] = {
            "patient_id": {},
            "accession_number": {},
            "modality": {},
        }
        for index, study in enumerate(self.studies):
            self._tables["patient_id"].setdefault(study.patient_id.casefold(), []).append(index)
            self._tables["accession_number"].setdefault(
                study.accession_number.casefold(), []
            ).append(index)
            for modality in {m.upper() for m in study.modalities}:
                self._tables["modality"].setdefault(modality, []).append(index)

    def _candidates(self, filter_: StudyFilter) -> list[StudyAttributes]:
        wanted = (
            ("patient_id", filter_.patient_id.strip().casefold()),
            ("accession_number", filter_.accession_number.strip().casefold()),
            ("modality", filter_.modality.strip().upper()),
        )
        chosen: list[int] | None = None
        for table, value in wanted:
            if not value:
                continue
            hits = self._tables[table].get(value, [])
            if chosen is None or len(hits) < len(chosen):
                chosen = hits
        if chosen is None:
            return self.studies
        return [self.studies[index] for index in chosen]

    def search(
        self,
        filter_: StudyFilter,
        today: date,
        *,
        sort: SortField = "study_date",
        descending: bool = True,
    ) -> list[StudyAttributes]:
        """As :func:`search` over every row, answered from the smallest matching table."""
        return search(self._candidates(filter_), filter_, today, sort=sort, descending=descending)

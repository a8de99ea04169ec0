"""Worklist search over decrypted attributes: the manual's fields, wildcards and date presets."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from securepacs.client.scanned import StudyAttributes
from securepacs.client.search import (
    DATE_PRESETS,
    StudyFilter,
    WorklistIndex,
    date_range,
    matches,
    search,
)

TODAY = date(2026, 11, 28)  # a Saturday

DOE = StudyAttributes(
    study_instance_uid="1.2.3.1",
    patient_name="DOE^JANE^M",
    patient_id="PID-0042",
    patient_sex="F",
    accession_number="ACC7",
    referring_physician="HOUSE^GREGORY",
    study_date="20261127",
    modalities=("CT", "SR"),
)
ROE = StudyAttributes(
    study_instance_uid="1.2.3.2",
    patient_name="ROE^RICHARD",
    patient_id="PID-7",
    patient_sex="M",
    study_date="20251003",
    modalities=("MR",),
)


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        (StudyFilter(), {"1.2.3.1", "1.2.3.2"}),
        (StudyFilter(patient_name="doe"), {"1.2.3.1"}),
        (StudyFilter(patient_name="jane"), {"1.2.3.1"}),
        (StudyFilter(patient_name="*ICH*"), {"1.2.3.2"}),
        (StudyFilter(patient_name="D*^J*"), {"1.2.3.1"}),
        (StudyFilter(patient_name="OE"), set()),
        (StudyFilter(patient_id=" pid-0042 "), {"1.2.3.1"}),
        (StudyFilter(patient_id="PID-00"), set()),
        (StudyFilter(patient_sex="m"), {"1.2.3.2"}),
        (StudyFilter(accession_number="ACC7"), {"1.2.3.1"}),
        (StudyFilter(referring_physician="house"), {"1.2.3.1"}),
        (StudyFilter(modality="sr"), {"1.2.3.1"}),
        (StudyFilter(modality="MR", patient_sex="F"), set()),
        (StudyFilter(date_preset="yesterday"), {"1.2.3.1"}),
        (StudyFilter(date_preset="this_week"), {"1.2.3.1"}),
        (StudyFilter(date_preset="last_year"), {"1.2.3.2"}),
        (StudyFilter(date_from=date(2025, 10, 3), date_to=date(2025, 10, 3)), {"1.2.3.2"}),
        (StudyFilter(date_from=date(2026, 1, 1)), {"1.2.3.1"}),
    ],
)
def test_search_fields_filter_as_the_manual_describes(
    filter_: StudyFilter, expected: set[str]
) -> None:
    found = {s.study_instance_uid for s in search([DOE, ROE], filter_, TODAY)}
    assert found == expected


def test_search_sorts_newest_first_by_default_and_by_any_column() -> None:
    assert [s.patient_name for s in search([ROE, DOE], StudyFilter(), TODAY)] == [
        "DOE^JANE^M",
        "ROE^RICHARD",
    ]
    by_id = search([DOE, ROE], StudyFilter(), TODAY, sort="patient_id", descending=False)
    assert [s.patient_id for s in by_id] == ["PID-0042", "PID-7"]


def test_search_studies_without_a_valid_date_never_match_a_date_filter() -> None:
    undated = StudyAttributes(study_instance_uid="9", study_date="2026")
    garbage = StudyAttributes(study_instance_uid="8", study_date="20261399")
    assert not matches(undated, StudyFilter(date_preset="this_year"), TODAY)
    assert not matches(garbage, StudyFilter(date_from=date(2000, 1, 1)), TODAY)
    assert matches(undated, StudyFilter(), TODAY)


@given(
    today=st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31)),
    preset=st.sampled_from(DATE_PRESETS),
)
def test_date_presets_are_ordered_ranges_around_today(today: date, preset: str) -> None:
    start, end = date_range(StudyFilter(date_preset=preset), today)  # type: ignore[arg-type]
    assert start is not None and end is not None
    assert start <= end <= today
    if preset.startswith("this_") or preset == "today":
        assert end == today
    if preset == "last_week":
        assert (end - start).days == 6 and start.weekday() == 0
    if preset == "last_month":
        assert end.month == (today.replace(day=1) - timedelta(days=1)).month and start.day == 1
    if preset == "last_year":
        assert (start.year, end.year) == (today.year - 1, today.year - 1)


_TEXT = st.sampled_from(["", "PID-7", "pid-7", "ACC7", "acc7 ", "X", "CT", "mr", "Sr"])
_ATTRIBUTES = st.builds(
    StudyAttributes,
    study_instance_uid=st.from_regex(r"1\.2\.[0-9]{1,6}", fullmatch=True),
    patient_id=st.sampled_from(["", "PID-7", "pid-7", "PID-0042"]),
    accession_number=st.sampled_from(["", "ACC7", "acc7", "B1"]),
    modalities=st.lists(st.sampled_from(["CT", "MR", "SR", "ct"]), max_size=3).map(tuple),
    study_date=st.sampled_from(["", "20261127", "20251003"]),
)


@given(
    studies=st.lists(_ATTRIBUTES, max_size=30),
    patient_id=_TEXT,
    accession=_TEXT,
    modality=_TEXT,
)
def test_the_worklist_index_answers_exactly_as_a_full_scan(
    studies: list[StudyAttributes], patient_id: str, accession: str, modality: str
) -> None:
    filter_ = StudyFilter(patient_id=patient_id, accession_number=accession, modality=modality)
    assert WorklistIndex(studies).search(filter_, TODAY) == search(studies, filter_, TODAY)

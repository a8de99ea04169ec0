"""Deterministic synthetic DICOM for the benchmarks: a CT series, a search corpus, a large study.

Everything here is a pure function of its arguments and ``seed``: the same call writes the same
bytes (for one pydicom version), so benchmark runs are comparable and query values can be chosen
in advance. UIDs use the ``2.25.<integer>`` form of a name-based UUID of the seed, so no
organisation root is needed.

- ``make_ct_series``: one 16-bit CT series from a real CT header (pydicom's ``CT_small.dcm``)
  with a body-shaped phantom and noise, about 0.5 MB a slice at 512x512.
- ``make_search_corpus`` / ``corpus_studies``: many tiny single-instance studies with realistic,
  varied patient and study attributes for QIDO benchmarks. ``corpus_studies`` returns the same
  attributes without writing anything, so a benchmark can pick query values that exist.
- ``make_large_study``: multi-frame 16-bit instances totalling a given size, written by
  streaming so that making a 2 GB study needs only a few MB of memory.

Only pydicom and the standard library are used (numpy is not a dependency of the project).
"""

from __future__ import annotations

import copy
import datetime
import io
import itertools
import math
import random
import struct
import sys
import uuid
from array import array
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import pydicom
from pydicom.data import get_testdata_file
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ComputedRadiographyImageStorage,
    CTImageStorage,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    MRImageStorage,
    MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
    UltrasoundImageStorage,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from pathlib import Path

__all__ = (
    "CorpusStudy",
    "corpus_studies",
    "make_ct_series",
    "make_large_study",
    "make_search_corpus",
)

# Stored CT values are HU minus the intercept; the template's padding value marks pixels
# outside the reconstruction circle, as real scanners do.
RESCALE_INTERCEPT_HU: Final = -1024
PIXEL_PADDING_VALUE: Final = -2000
CT_FIELD_OF_VIEW_MM: Final = 350.0
CT_SLICE_THICKNESS_MM: Final = 1.25
LARGE_STUDY_COLUMNS: Final = 512
LARGE_STUDY_FILE_BYTES: Final = 256 * 1024 * 1024
# Explicit VR little endian keeps the value length of these VRs in 16 bits; all the fields the
# corpus varies use one of them.
_SHORT_STRING_VRS: Final = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "IS", "LO", "PN", "SH", "TM", "UI"}
)
_MAX_PIXEL_DATA_BYTES: Final = 0xFFFFFFFE
_UID_NAMESPACE: Final = "securepacs-bench"
_IMPLEMENTATION_VERSION_NAME: Final = "SECUREPACS_BENCH"
_UID_NAMESPACE_UUID: Final = uuid.uuid5(uuid.NAMESPACE_URL, "urn:securepacs:bench:synthetic")


# --- UIDs and the CT template -------------------------------------------------------------------


def _uid(seed: int, *parts: object) -> str:
    """A ``2.25.<integer>`` UID from a name-based UUID of the seed and labels (stable across runs).

    pydicom's ``generate_uid(prefix=None)`` ignores its entropy sources and returns a random
    UUID, so the deterministic form is built here (ITU-T X.667 allows any UUID, version 5
    included).
    """
    name = "/".join((str(seed), *map(str, parts)))
    return f"2.25.{uuid.uuid5(_UID_NAMESPACE_UUID, name).int}"


def _file_meta(sop_class_uid: str, sop_instance_uid: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class_uid)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = _IMPLEMENTATION_VERSION_NAME
    return meta


def _ct_template() -> Dataset:
    """The public attributes of a real GE CT header, without its pixels and identifiers."""
    path = get_testdata_file("CT_small.dcm")
    if path is None:  # pragma: no cover - pydicom's wheel always ships its test files
        raise RuntimeError("pydicom's CT_small.dcm test file is missing")
    dataset = pydicom.dcmread(path)
    # Private GE blocks carry per-image checksums and scanner state that would be stale for
    # synthetic pixels; the trailing padding would sit after the pixel data we append.
    dataset.remove_private_tags()
    for keyword in (
        "PixelData",
        "DataSetTrailingPadding",
        "OtherPatientIDsSequence",
        "InstanceCreatorUID",
        "AdditionalPatientHistory",
        "PatientWeight",
    ):
        if keyword in dataset:
            delattr(dataset, keyword)
    return dataset


# --- the phantom ---------------------------------------------------------------------------------

# Tissue classes in HU with the noise each gets; CT noise grows in dense material.
_AIR: Final = (-1000, 12)
_LUNG: Final = (-850, 25)
_FAT: Final = (-100, 14)
_WATER: Final = (5, 12)
_SOFT: Final = (40, 14)
_KIDNEY: Final = (30, 14)
_LIVER: Final = (60, 14)
_HEART: Final = (45, 16)
_CONTRAST: Final = (180, 20)
_BONE: Final = (700, 60)
_TISSUES: Final = (_AIR, _LUNG, _FAT, _WATER, _SOFT, _KIDNEY, _LIVER, _HEART, _CONTRAST, _BONE)
_PADDING: Final = -1  # a class index of its own: constant, no noise


@dataclass(frozen=True, slots=True)
class _Ellipse:
    """An axis-aligned ellipse in fractions of the image (x of the width, y of the height)."""

    cx: float
    cy: float
    a: float
    b: float
    tissue: int


def _bump(t: float, start: float, end: float) -> float:
    """A half-sine envelope: 0 outside [start, end], 1 in the middle (organs wax and wane in z)."""
    if t <= start or t >= end:
        return 0.0
    return math.sin(math.pi * (t - start) / (end - start))


def _anatomy(t: float, jitter: Sequence[float]) -> list[_Ellipse]:
    """Shapes for one axial level, t=0 at the pelvis and t=1 at the neck, painted in order."""
    neck = 1.0 - 0.45 * max(0.0, min(1.0, (t - 0.85) / 0.15))
    jx, jy = jitter[0], jitter[1]
    shapes = [
        _Ellipse(0.5, 0.5, 0.5, 0.5, _TISSUES.index(_AIR)),
        _Ellipse(0.5 + jx, 0.53 + jy, 0.40 * neck, 0.29 * neck, _TISSUES.index(_FAT)),
        _Ellipse(0.5 + jx, 0.53 + jy, 0.37 * neck, 0.26 * neck, _TISSUES.index(_SOFT)),
    ]
    organs = (
        # (cx, cy, a, b, tissue, z start, z end)
        (0.37, 0.48, 0.11, 0.15, _LUNG, 0.55, 0.92),
        (0.63, 0.48, 0.11, 0.15, _LUNG, 0.55, 0.92),
        (0.53, 0.47, 0.08, 0.07, _HEART, 0.60, 0.80),
        (0.37, 0.50, 0.15, 0.12, _LIVER, 0.35, 0.62),
        (0.39, 0.63, 0.04, 0.055, _KIDNEY, 0.25, 0.43),
        (0.61, 0.63, 0.04, 0.055, _KIDNEY, 0.25, 0.43),
        (0.50, 0.50, 0.08, 0.06, _WATER, -0.10, 0.14),
        (0.27, 0.60, 0.07, 0.10, _BONE, -0.10, 0.22),
        (0.73, 0.60, 0.07, 0.10, _BONE, -0.10, 0.22),
    )
    for cx, cy, a, b, tissue, start, end in organs:
        size = _bump(t, start, end)
        if size > 0.05:
            shapes.append(_Ellipse(cx + jx, cy + jy, a * size, b * size, _TISSUES.index(tissue)))
    # The spine and aorta sit at fixed depths behind the body's centre, nearer it in the neck.
    spine = 0.53 + 0.18 * neck
    if 0.18 < t < 0.88:
        shapes.append(
            _Ellipse(0.52 + jx, spine - 0.09 + jy, 0.018, 0.018, _TISSUES.index(_CONTRAST))
        )
    shapes.append(_Ellipse(0.5 + jx, spine + jy, 0.045 * neck, 0.04, _TISSUES.index(_BONE)))
    shapes.append(_Ellipse(0.5 + jx, spine + 0.025 + jy, 0.014, 0.014, _TISSUES.index(_WATER)))
    return shapes


def _paint(runs: list[tuple[int, int, int]], x0: int, x1: int, tissue: int) -> None:
    """Overwrite [x0, x1) in a sorted run list with one tissue, in place."""
    painted: list[tuple[int, int, int]] = []
    for start, end, value in runs:
        if end <= x0 or start >= x1:
            painted.append((start, end, value))
            continue
        if start < x0:
            painted.append((start, x0, value))
        if end > x1:
            painted.append((x1, end, value))
    painted.append((x0, x1, tissue))
    painted.sort()
    runs[:] = painted


class _Phantom:
    """Fast 16-bit CT-like frames: run-length anatomy per level plus pre-drawn noise textures.

    Drawing noise per pixel in Python for 400 slices of 512x512 would take minutes. Instead each
    tissue gets one long buffer of noisy pixel values; a frame is assembled by slicing those
    buffers at offsets that depend on the frame, row and run, so that every frame differs while
    the cost per row is a handful of slices and one join.
    """

    def __init__(self, rows: int, columns: int, *, levels: int, seed: int) -> None:
        if rows < 1 or columns < 1 or levels < 1:
            raise ValueError("rows, columns and levels must be positive")
        rng = random.Random(f"{_UID_NAMESPACE}/phantom/{seed}")  # noqa: S311 -- reproducible, not secret
        self._columns = columns
        self._span = 3 * columns
        self._textures: list[memoryview] = []
        for hu, sigma in _TISSUES:
            stored = hu - RESCALE_INTERCEPT_HU
            values = array(
                "h",
                (
                    max(-32768, min(32767, round(rng.gauss(stored, sigma))))
                    for _ in range(self._span + columns)
                ),
            )
            if sys.byteorder == "big":
                values.byteswap()
            self._textures.append(memoryview(values.tobytes()))
        self._padding = memoryview(struct.pack("<h", PIXEL_PADDING_VALUE) * columns)
        jitter = (rng.uniform(-0.01, 0.01), rng.uniform(-0.01, 0.01))
        self._levels = [
            self._rasterise(_anatomy((level + 0.5) / levels, jitter), rows, columns)
            for level in range(levels)
        ]

    @staticmethod
    def _rasterise(
        shapes: Sequence[_Ellipse], rows: int, columns: int
    ) -> list[list[tuple[int, int, int]]]:
        """Per row, the (start, length, tissue) runs that the shapes paint."""
        raster: list[list[tuple[int, int, int]]] = []
        for y in range(rows):
            runs = [(0, columns, _PADDING)]
            for shape in shapes:
                dy = ((y + 0.5) / rows - shape.cy) / shape.b
                if abs(dy) >= 1.0:
                    continue
                half = shape.a * math.sqrt(1.0 - dy * dy)
                x0 = max(0, round((shape.cx - half) * columns))
                x1 = min(columns, round((shape.cx + half) * columns))
                if x1 > x0:
                    _paint(runs, x0, x1, shape.tissue)
            raster.append([(start, end - start, tissue) for start, end, tissue in runs])
        return raster

    @property
    def levels(self) -> int:
        """How many distinct anatomical levels the phantom has."""
        return len(self._levels)

    def frame(self, level: int, index: int) -> bytes:
        """The little-endian int16 pixels of one frame at an anatomical level."""
        pieces: list[memoryview] = []
        frame_offset = index * 7919
        for y, runs in enumerate(self._levels[level]):
            row_offset = frame_offset + y * 104729
            for start, length, tissue in runs:
                if tissue == _PADDING:
                    pieces.append(self._padding[: 2 * length])
                    continue
                offset = (row_offset + start * 131) % self._span
                pieces.append(self._textures[tissue][2 * offset : 2 * (offset + length)])
        return b"".join(pieces)


# --- CT series -----------------------------------------------------------------------------------


def _ds(value: float) -> str:
    """A DS string that always fits the 16-character limit."""
    return f"{value:.6g}"


def _study_date(seed: int) -> str:
    return (datetime.date(2024, 1, 1) + datetime.timedelta(days=seed % 366)).strftime("%Y%m%d")


def _file_name(index: int, count: int) -> str:
    """Zero-padded so that sorting the paths sorts the instances."""
    return f"{index + 1:0{max(4, len(str(count)))}d}.dcm"


def _phantom_header(dataset: Dataset, seed: int, kind: str) -> None:
    """Identify the synthetic patient and study in a dataset derived from the CT template."""
    date = _study_date(seed)
    dataset.PatientName = f"PHANTOM^{kind.upper()}"
    dataset.PatientID = f"PH{seed % 10**8:08d}"
    dataset.PatientBirthDate = "19580317"
    dataset.PatientSex = "F"
    dataset.PatientAge = "066Y"
    dataset.AccessionNumber = f"{kind.upper()[:2]}{seed % 10**8:08d}"
    dataset.ReferringPhysicianName = "HOUSE^GREGORY"
    dataset.StudyDescription = "CT CHEST ABDOMEN PELVIS W CONTRAST"
    dataset.StudyID = str(seed % 10**8)
    for keyword in (
        "InstanceCreationDate",
        "StudyDate",
        "SeriesDate",
        "AcquisitionDate",
        "ContentDate",
    ):
        setattr(dataset, keyword, date)
    dataset.StudyInstanceUID = _uid(seed, kind, "study")
    dataset.SeriesInstanceUID = _uid(seed, kind, "series")


def make_ct_series(
    out: Path, *, slices: int = 400, rows: int = 512, columns: int = 512, seed: int = 0
) -> list[Path]:
    """Write one synthetic axial CT series (one study, one series) as Part 10 files.

    The header is pydicom's real GE CT test file with its private tags and identifiers removed;
    each slice is explicit VR little endian, signed 16-bit MONOCHROME2 with a rescale to HU, a
    350 mm field of view, 1.25 mm slices with z increasing, and a body-shaped phantom with noise
    (about 0.5 MB a slice at 512x512). The files are named ``0001.dcm``... in slice order.

    Args:
        out: Folder to write into; created if missing. Existing files of the same names are
            overwritten.
        slices: Number of slices.
        rows: Image rows.
        columns: Image columns.
        seed: Selects the UIDs, the study date and the noise; the same seed gives the same files.

    Returns:
        The paths written, sorted (which is slice order).

    Raises:
        ValueError: If a size is not positive or a dimension exceeds 65535.
    """
    if slices < 1 or not 1 <= rows <= 0xFFFF or not 1 <= columns <= 0xFFFF:
        raise ValueError("slices, rows and columns must be positive (and rows/columns < 65536)")
    out.mkdir(parents=True, exist_ok=True)
    dataset = _ct_template()
    _phantom_header(dataset, seed, "ct")
    dataset.FrameOfReferenceUID = _uid(seed, "ct", "frame-of-reference")
    dataset.SeriesDescription = "AXIAL 1.25MM STANDARD"
    dataset.SeriesNumber = 2
    dataset.Rows = rows
    dataset.Columns = columns
    row_spacing = CT_FIELD_OF_VIEW_MM / rows
    column_spacing = CT_FIELD_OF_VIEW_MM / columns
    dataset.PixelSpacing = [_ds(row_spacing), _ds(column_spacing)]
    dataset.ReconstructionDiameter = _ds(CT_FIELD_OF_VIEW_MM)
    dataset.SliceThickness = _ds(CT_SLICE_THICKNESS_MM)
    dataset.SpacingBetweenSlices = _ds(CT_SLICE_THICKNESS_MM)
    dataset.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    dataset.RescaleIntercept = str(RESCALE_INTERCEPT_HU)
    dataset.RescaleSlope = "1"
    dataset.RescaleType = "HU"
    dataset.WindowCenter = "40"
    dataset.WindowWidth = "400"
    dataset.BitsAllocated = 16
    dataset.BitsStored = 16
    dataset.HighBit = 15
    dataset.PixelRepresentation = 1
    dataset.add_new(0x00280120, "SS", PIXEL_PADDING_VALUE)  # PixelPaddingValue; VR is ambiguous

    phantom = _Phantom(rows, columns, levels=min(slices, 24), seed=seed)
    x0 = -CT_FIELD_OF_VIEW_MM / 2 + column_spacing / 2
    y0 = -CT_FIELD_OF_VIEW_MM / 2 + row_spacing / 2
    z0 = -CT_SLICE_THICKNESS_MM * (slices - 1) / 2
    paths: list[Path] = []
    for index in range(slices):
        z = z0 + index * CT_SLICE_THICKNESS_MM
        sop_instance_uid = _uid(seed, "ct", "instance", index)
        dataset.file_meta = _file_meta(CTImageStorage, sop_instance_uid)
        dataset.SOPClassUID = CTImageStorage
        dataset.SOPInstanceUID = sop_instance_uid
        dataset.InstanceNumber = index + 1
        dataset.ImagePositionPatient = [_ds(x0), _ds(y0), _ds(z)]
        dataset.SliceLocation = _ds(z)
        level = index * phantom.levels // slices
        dataset.add_new(0x7FE00010, "OW", phantom.frame(level, index))
        path = out / _file_name(index, slices)
        dataset.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


# --- search corpus -------------------------------------------------------------------------------

_FAMILY_NAMES: Final = (
    "SMITH", "GARCIA", "MULLER", "NGUYEN", "JOHNSON", "KOWALSKI", "ROSSI", "MARTIN", "BROWN",
    "SILVA", "KIM", "WILLIAMS", "DUBOIS", "SCHMIDT", "LOPEZ", "TANAKA", "OKAFOR", "JONES",
    "ANDERSSON", "PATEL", "IVANOV", "MILLER", "HANSEN", "RODRIGUEZ", "COHEN", "DAVIS",
    "FERNANDEZ", "WANG", "MOREAU", "NOWAK", "OBRIEN", "KHAN", "JANSSEN", "BERG", "WILSON",
    "SATO", "HERNANDEZ", "MEYER", "OLSEN", "TAYLOR", "MENDES", "PETROV", "CHEN", "LAURENT",
    "MURPHY", "ALVAREZ", "FISCHER", "LINDQVIST", "ADEYEMI", "HOFFMANN", "CLARKE", "NAKAMURA",
    "WEBER", "SANTOS", "KOVAC", "BAKER", "LEHMANN", "PARK", "WALSH", "ROMANO",
)  # fmt: skip
_GIVEN_NAMES_F: Final = (
    "MARY", "ANNA", "MARIA", "SOPHIE", "EMMA", "LINDA", "YUKI", "FATIMA", "OLGA", "SARAH",
    "CLAIRE", "INGRID", "LUCIA", "HANNA", "PRIYA", "GRACE", "ELENA", "JULIA", "NGOZI", "MEI",
)  # fmt: skip
_GIVEN_NAMES_M: Final = (
    "JOHN", "JAMES", "PETER", "MICHAEL", "DAVID", "LUCA", "HIROSHI", "AHMED", "IVAN", "PAUL",
    "THOMAS", "ERIK", "CARLOS", "JAN", "RAJ", "SAMUEL", "PIERRE", "MARCO", "CHIDI", "WEI",
)  # fmt: skip
_DESCRIPTIONS: Final = {
    "CT": (
        "CT HEAD WO CONTRAST", "CT CHEST W CONTRAST", "CT ABDOMEN PELVIS W CONTRAST",
        "CT ANGIO CHEST PE", "CT SPINE LUMBAR WO", "CT SINUS WO CONTRAST",
    ),
    "MR": (
        "MR BRAIN W WO CONTRAST", "MR KNEE LEFT WO", "MR KNEE RIGHT WO", "MR LUMBAR SPINE WO",
        "MR SHOULDER RIGHT", "MR PROSTATE MULTIPARAMETRIC",
    ),
    "CR": ("CR CHEST PA LAT", "CR CHEST PORTABLE AP", "CR ABDOMEN SUPINE", "CR PELVIS AP"),
    "US": (
        "US ABDOMEN COMPLETE", "US THYROID", "US RENAL BILATERAL", "US OB 2ND TRIMESTER",
        "US CAROTID DOPPLER",
    ),
    "DX": ("DX HAND LEFT 3 VIEWS", "DX ANKLE RIGHT 3 VIEWS", "DX WRIST LEFT 2 VIEWS", "DX FOOT"),
}  # fmt: skip
_MODALITIES: Final = ("CT", "MR", "CR", "US", "DX")
_MODALITY_WEIGHTS: Final = (25, 15, 25, 15, 20)
_SOP_CLASSES: Final = {
    "CT": CTImageStorage,
    "MR": MRImageStorage,
    "CR": ComputedRadiographyImageStorage,
    "US": UltrasoundImageStorage,
    "DX": DigitalXRayImageStorageForPresentation,
}
_FIRST_STUDY_DATE: Final = datetime.date(2016, 1, 1)
_STUDY_DATE_DAYS: Final = 3653  # through 2025-12-31
_RETURNING_PATIENT_PERCENT: Final = 35
_CORPUS_VARIABLE: Final = (
    "SOPClassUID",
    "SOPInstanceUID",
    "StudyDate",
    "SeriesDate",
    "StudyTime",
    "SeriesTime",
    "AccessionNumber",
    "Modality",
    "ReferringPhysicianName",
    "StudyDescription",
    "SeriesDescription",
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "StudyID",
)


@dataclass(frozen=True, slots=True)
class CorpusStudy:
    """The searchable attributes of one search-corpus study (DICOM string forms).

    Attributes:
        index: Position in the corpus; ``make_search_corpus`` returns its path at this index.
        patient_name: ``FAMILY^GIVEN``; family names follow a skewed (Zipf-like) distribution,
            so some are common and some rare. About a third of studies belong to a patient
            seen before, with the same name, ID, sex and birth date.
        patient_id: Unique per patient.
        patient_sex: ``F`` or ``M``.
        patient_birth_date: ``YYYYMMDD``.
        accession_number: Unique per study.
        modality: One of CT, MR, CR, US, DX.
        study_date: ``YYYYMMDD`` between 2016-01-01 and 2025-12-31.
        study_time: ``HHMMSS`` in working hours.
        study_description: Realistic for the modality.
        referring_physician_name: ``FAMILY^GIVEN`` from a small pool.
        study_instance_uid: The study's UID.
        series_instance_uid: Its one series' UID.
        sop_instance_uid: Its one instance's UID.
    """

    index: int
    patient_name: str
    patient_id: str
    patient_sex: str
    patient_birth_date: str
    accession_number: str
    modality: str
    study_date: str
    study_time: str
    study_description: str
    referring_physician_name: str
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str


@dataclass(frozen=True, slots=True)
class _Patient:
    name: str
    patient_id: str
    sex: str
    birth_date: str


def _iter_corpus(seed: int) -> Iterator[CorpusStudy]:
    """The corpus as an endless stream: study i depends only on the seed and studies before it.

    So a corpus of n studies is a prefix of any larger corpus with the same seed.
    """
    rng = random.Random(f"{_UID_NAMESPACE}/corpus/{seed}")  # noqa: S311 -- reproducible, not secret
    family_weights = list(itertools.accumulate(1.0 / (rank + 1) ** 0.7 for rank in range(60)))
    modality_weights = list(itertools.accumulate(_MODALITY_WEIGHTS))
    physicians = [
        f"{rng.choice(_FAMILY_NAMES)}^{rng.choice(_GIVEN_NAMES_F + _GIVEN_NAMES_M)}"
        for _ in range(25)
    ]
    prefix = f"{seed % 1000:03d}"
    patients: list[_Patient] = []
    for index in itertools.count():
        if patients and rng.randrange(100) < _RETURNING_PATIENT_PERCENT:
            patient = patients[rng.randrange(len(patients))]
        else:
            sex = rng.choice("FM")
            given = rng.choice(_GIVEN_NAMES_F if sex == "F" else _GIVEN_NAMES_M)
            family = rng.choices(_FAMILY_NAMES, cum_weights=family_weights)[0]
            birth = datetime.date(1930, 1, 1) + datetime.timedelta(days=rng.randrange(31_000))
            patient = _Patient(
                name=f"{family}^{given}",
                patient_id=f"{prefix}{len(patients) + 1:07d}",
                sex=sex,
                birth_date=birth.strftime("%Y%m%d"),
            )
            patients.append(patient)
        modality = rng.choices(_MODALITIES, cum_weights=modality_weights)[0]
        date = _FIRST_STUDY_DATE + datetime.timedelta(days=rng.randrange(_STUDY_DATE_DAYS))
        yield CorpusStudy(
            index=index,
            patient_name=patient.name,
            patient_id=patient.patient_id,
            patient_sex=patient.sex,
            patient_birth_date=patient.birth_date,
            accession_number=f"A{prefix}{index + 1:08d}",
            modality=modality,
            study_date=date.strftime("%Y%m%d"),
            study_time=f"{rng.randrange(7, 20):02d}{rng.randrange(60):02d}{rng.randrange(60):02d}",
            study_description=rng.choice(_DESCRIPTIONS[modality]),
            referring_physician_name=rng.choice(physicians),
            study_instance_uid=_uid(seed, "corpus", index, "study"),
            series_instance_uid=_uid(seed, "corpus", index, "series"),
            sop_instance_uid=_uid(seed, "corpus", index, "instance"),
        )


def corpus_studies(studies: int, *, seed: int = 0) -> list[CorpusStudy]:
    """The attributes of the studies ``make_search_corpus`` writes, without writing anything.

    Args:
        studies: How many studies.
        seed: The corpus seed; must match the one given to ``make_search_corpus``.

    Returns:
        One entry per study, in the order of the paths ``make_search_corpus`` returns.

    Raises:
        ValueError: If ``studies`` is negative.
    """
    if studies < 0:
        raise ValueError("studies must not be negative")
    return list(itertools.islice(_iter_corpus(seed), studies))


def _corpus_values(study: CorpusStudy) -> dict[str, str]:
    return {
        "SOPClassUID": _SOP_CLASSES[study.modality],
        "SOPInstanceUID": study.sop_instance_uid,
        "StudyDate": study.study_date,
        "SeriesDate": study.study_date,
        "StudyTime": study.study_time,
        "SeriesTime": study.study_time,
        "AccessionNumber": study.accession_number,
        "Modality": study.modality,
        "ReferringPhysicianName": study.referring_physician_name,
        "StudyDescription": study.study_description,
        "SeriesDescription": study.study_description,
        "PatientName": study.patient_name,
        "PatientID": study.patient_id,
        "PatientBirthDate": study.patient_birth_date,
        "PatientSex": study.patient_sex,
        "StudyInstanceUID": study.study_instance_uid,
        "SeriesInstanceUID": study.series_instance_uid,
        "StudyID": study.accession_number[-8:],
    }


def _corpus_template() -> Dataset:
    """The attributes every corpus instance shares: a tiny 8x8 16-bit image."""
    dataset = Dataset()
    dataset.SpecificCharacterSet = "ISO_IR 100"
    dataset.ImageType = ["ORIGINAL", "PRIMARY"]
    dataset.Manufacturer = "SECUREPACS BENCH"
    dataset.InstitutionName = "SYNTHETIC GENERAL HOSPITAL"
    dataset.SeriesNumber = 1
    dataset.InstanceNumber = 1
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.Rows = 8
    dataset.Columns = 8
    dataset.BitsAllocated = 16
    dataset.BitsStored = 12
    dataset.HighBit = 11
    dataset.PixelRepresentation = 0
    dataset.add_new(0x7FE00010, "OW", struct.pack("<64H", *(64 * row for row in range(64))))
    return dataset


def _short_element(tag: int, vr: str, value: str) -> bytes:
    """Encode one short-form element (explicit VR little endian), padded to even length."""
    encoded = value.encode("ascii")
    if len(encoded) % 2:
        encoded += b"\0" if vr == "UI" else b" "
    return (
        struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode("ascii"), len(encoded)) + encoded
    )


class _SpliceWriter:
    """Encodes many Part 10 instances that differ from one template only in short string fields.

    pydicom's writer costs about a millisecond per small instance, which makes 100,000 studies
    take minutes. pydicom encodes the fixed runs of elements once; each instance is then those
    runs joined with its own variable elements in tag order, plus a file meta group. The first
    instance is checked byte for byte against pydicom's own encoding of the same dataset.
    """

    def __init__(self, template: Dataset, variable: Sequence[str]) -> None:
        tags: list[tuple[int, str, str]] = []
        for keyword in variable:
            tag = tag_for_keyword(keyword)
            if tag is None or keyword in template:
                raise ValueError("variable fields must be known keywords absent from the template")
            vr = dictionary_VR(tag)
            if vr not in _SHORT_STRING_VRS:
                raise ValueError("variable fields must have a short string VR")
            tags.append((tag, vr, keyword))
        tags.sort()
        if {"SOPClassUID", "SOPInstanceUID"} - set(variable):
            raise ValueError("SOPClassUID and SOPInstanceUID must be variable")
        self._template = template
        self._variable = tags
        bounds = [-1, *(tag for tag, _, _ in tags), 0x1_0000_0000]
        self._fixed: list[bytes] = []
        for low, high in itertools.pairwise(bounds):
            part = Dataset()
            for element in template:
                if low < element.tag < high:
                    part.add(element)
            buffer = DicomBytesIO()
            buffer.is_little_endian = True
            buffer.is_implicit_VR = False
            write_dataset(buffer, part)
            self._fixed.append(buffer.getvalue())
        self._checked = False

    @staticmethod
    def _file_meta(sop_class_uid: str, sop_instance_uid: str) -> bytes:
        elements = (
            struct.pack("<HH2sHI", 0x0002, 0x0001, b"OB", 0, 2) + b"\0\1",
            _short_element(0x00020002, "UI", sop_class_uid),
            _short_element(0x00020003, "UI", sop_instance_uid),
            _short_element(0x00020010, "UI", ExplicitVRLittleEndian),
            _short_element(0x00020012, "UI", PYDICOM_IMPLEMENTATION_UID),
            _short_element(0x00020013, "SH", _IMPLEMENTATION_VERSION_NAME),
        )
        length = sum(map(len, elements))
        group_length = struct.pack("<HH2sHI", 0x0002, 0x0000, b"UL", 4, length)
        return b"".join((bytes(128), b"DICM", group_length, *elements))

    def encode(self, values: Mapping[str, str]) -> bytes:
        """The complete Part 10 file for one instance."""
        pieces = [self._file_meta(values["SOPClassUID"], values["SOPInstanceUID"])]
        for fixed, (tag, vr, keyword) in zip(self._fixed, self._variable, strict=False):
            pieces.append(fixed)
            pieces.append(_short_element(tag, vr, values[keyword]))
        pieces.append(self._fixed[-1])
        encoded = b"".join(pieces)
        if not self._checked:
            self._check(values, encoded)
            self._checked = True
        return encoded

    def _check(self, values: Mapping[str, str], encoded: bytes) -> None:
        dataset = copy.deepcopy(self._template)
        for keyword, value in values.items():
            setattr(dataset, keyword, value)
        dataset.file_meta = _file_meta(values["SOPClassUID"], values["SOPInstanceUID"])
        reference = io.BytesIO()
        dataset.save_as(reference, enforce_file_format=True)
        if reference.getvalue() != encoded:
            raise RuntimeError("the fast corpus writer disagrees with pydicom's encoding")


def make_search_corpus(out: Path, *, studies: int, seed: int = 0) -> list[Path]:
    """Write ``studies`` single-instance studies (tiny 8x8 images) for search benchmarks.

    Each instance is a valid explicit VR little endian Part 10 file of about 1 KB with a SOP
    class matching its modality. The attributes are those ``corpus_studies(studies, seed=seed)``
    returns. Files go into subfolders of 1,000 (``000/000001.dcm``...) so that no folder gets
    huge; 100,000 studies take well under a minute to write.

    Args:
        out: Folder to write into; created if missing.
        studies: How many studies.
        seed: Selects every attribute; the same seed gives the same files.

    Returns:
        The paths written, sorted; ``paths[i]`` holds ``corpus_studies(...)[i]``.

    Raises:
        ValueError: If ``studies`` is negative.
    """
    if studies < 0:
        raise ValueError("studies must not be negative")
    writer = _SpliceWriter(_corpus_template(), _CORPUS_VARIABLE)
    width = max(6, len(str(studies)))
    folder_width = max(3, len(str(max(0, studies - 1) // 1000)))
    paths: list[Path] = []
    folder = out
    for study in itertools.islice(_iter_corpus(seed), studies):
        if study.index % 1000 == 0:
            folder = out / f"{study.index // 1000:0{folder_width}d}"
            folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{study.index + 1:0{width}d}.dcm"
        path.write_bytes(writer.encode(_corpus_values(study)))
        paths.append(path)
    return paths


# --- large study ---------------------------------------------------------------------------------


def _pixel_data_header(length: int) -> bytes:
    """The (7FE0,0010) OW element header, long form, for ``length`` bytes of pixel data."""
    return struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, length)


def make_large_study(
    out: Path,
    *,
    total_bytes: int,
    seed: int = 0,
    frame_bytes: int = 512 * 512 * 2,
    file_bytes: int = LARGE_STUDY_FILE_BYTES,
) -> list[Path]:
    """Write one study of multi-frame 16-bit instances totalling about ``total_bytes``.

    The instances are Multi-frame Grayscale Word Secondary Capture (modality CT, a 512-column
    CT phantom per frame, a Slice Location Vector as the frame increment). Each file's header is
    written by pydicom and its pixel data is appended frame by frame, so memory use stays at a
    few frames whatever the size. Every frame differs from the others.

    Args:
        out: Folder to write into; created if missing.
        total_bytes: Pixel bytes wanted in all; rounded up to whole frames (at least one).
        seed: Selects the UIDs and the noise.
        frame_bytes: Bytes per frame: a positive multiple of 1,024 (512 columns of 16-bit
            pixels), at most 64 MiB.
        file_bytes: Pixel bytes per file at most (rounded down to whole frames, at least one
            frame); the last file holds what remains.

    Returns:
        The paths written, sorted (which is instance order).

    Raises:
        ValueError: If a size is out of range.
    """
    row_bytes = 2 * LARGE_STUDY_COLUMNS
    if frame_bytes <= 0 or frame_bytes % row_bytes or frame_bytes // row_bytes > 0xFFFF:
        raise ValueError("frame_bytes must be a positive multiple of 1024, at most 64 MiB")
    if total_bytes <= 0 or file_bytes <= 0:
        raise ValueError("total_bytes and file_bytes must be positive")
    frames_per_file = max(1, file_bytes // frame_bytes)
    if frames_per_file * frame_bytes > _MAX_PIXEL_DATA_BYTES:
        raise ValueError("file_bytes must stay below 4 GiB (a 32-bit element length)")
    total_frames = -(-total_bytes // frame_bytes)
    counts = [
        min(frames_per_file, total_frames - first)
        for first in range(0, total_frames, frames_per_file)
    ]
    rows = frame_bytes // row_bytes
    out.mkdir(parents=True, exist_ok=True)

    dataset = _ct_template()
    for keyword in (
        "ImagePositionPatient",
        "ImageOrientationPatient",
        "SliceLocation",
        "FrameOfReferenceUID",
        "PositionReferenceIndicator",
    ):
        if keyword in dataset:
            delattr(dataset, keyword)
    _phantom_header(dataset, seed, "large")
    dataset.SOPClassUID = MultiFrameGrayscaleWordSecondaryCaptureImageStorage
    dataset.ConversionType = "SYN"
    dataset.SeriesDescription = "SYNTHETIC MULTI-FRAME VOLUME"
    dataset.SeriesNumber = 3
    dataset.Rows = rows
    dataset.Columns = LARGE_STUDY_COLUMNS
    dataset.PixelSpacing = [_ds(CT_FIELD_OF_VIEW_MM / rows), _ds(CT_FIELD_OF_VIEW_MM / 512)]
    dataset.RescaleIntercept = str(RESCALE_INTERCEPT_HU)
    dataset.RescaleSlope = "1"
    dataset.RescaleType = "HU"
    dataset.BitsAllocated = 16
    dataset.BitsStored = 16
    dataset.HighBit = 15
    dataset.PixelRepresentation = 1
    dataset.add_new(0x00280120, "SS", PIXEL_PADDING_VALUE)  # PixelPaddingValue; VR is ambiguous
    dataset.FrameIncrementPointer = tag_for_keyword("SliceLocationVector")

    phantom = _Phantom(rows, LARGE_STUDY_COLUMNS, levels=min(total_frames, 24), seed=seed)
    paths: list[Path] = []
    first_frame = 0
    for index, count in enumerate(counts):
        sop_instance_uid = _uid(seed, "large", "instance", index)
        dataset.file_meta = _file_meta(dataset.SOPClassUID, sop_instance_uid)
        dataset.SOPInstanceUID = sop_instance_uid
        dataset.InstanceNumber = index + 1
        dataset.NumberOfFrames = count
        dataset.SliceLocationVector = [
            _ds(frame * CT_SLICE_THICKNESS_MM) for frame in range(first_frame, first_frame + count)
        ]
        path = out / _file_name(index, len(counts))
        with path.open("wb") as stream:
            dataset.save_as(stream, enforce_file_format=True)
            # The header has no element after (7FE0,0010), so the pixel data may follow it.
            stream.write(_pixel_data_header(count * frame_bytes))
            for frame in range(first_frame, first_frame + count):
                level = frame * phantom.levels // total_frames
                stream.write(phantom.frame(level, frame))
        paths.append(path)
        first_frame += count
    return paths

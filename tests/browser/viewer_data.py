"""The studies the viewer tests open, and what each should look like on screen.

- A synthetic CT volume (bench/synthetic.py's real CT header) of 48 slices of 64x64 at 2 mm
  isotropic spacing, whose file names are shuffled so that the manifest order is not the slice
  order; each slice carries a distinct ramp pattern, and three bright rods start at one voxel
  and run along +x, +y and +z with different lengths, so that each MPR plane shows a different
  pair of rods at a known place.
- pydicom's 10-frame MR (emri_small.dcm) for cine.
- One study of pydicom's test files in every transfer syntax it ships (one series each,
  described by its syntax), one the viewer cannot decode (MPEG2, synthetic) and a structured
  report, which is listed but not displayed.

The reference rendering is the DICOM linear VOI function (PS3.3 C.11.2.1.2) on the stored
values after the modality rescale, as Cornerstone applies it.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate
from pydicom.uid import UID

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from synthetic import make_ct_series

if TYPE_CHECKING:
    from numpy.typing import NDArray

# -- the CT volume -----------------------------------------------------------------------------

SLICES: Final = 48
ROWS: Final = 64
COLUMNS: Final = 64
SPACING_MM: Final = 2.0
# The voxel (z, y, x) the rods start from, near the volume's centre so that the middle plane of
# every orientation passes through it; each rod is 3 voxels thick about its axis.
ROD_ORIGIN: Final = (24, 32, 32)
ROD_VOXELS: Final = {"x": 20, "y": 12, "z": 8}
ROD_HU: Final = 3000
# The file's own window, which the viewer shows first.
CT_WINDOW: Final = (400, 40)
VOLUME_PATIENT: Final = "Viewer^Volume"
CINE_PATIENT: Final = "Viewer^Cine"
CODECS_PATIENT: Final = "Viewer^Codecs"
CINE_FRAMES: Final = 10
BROKEN_PATIENT: Final = "Viewer^Broken"
# No other study of the module has this many instances: the server finds it by the count.
BROKEN_INSTANCES: Final = 2


def volume_hu() -> NDArray[np.int32]:
    """The volume in HU, indexed [z, y, x]: a ramp per slice, and the rods."""
    z, y, x = np.indices((SLICES, ROWS, COLUMNS))
    # A triangle wave within -150..200 HU: no edge inside a slice (so the linear interpolation
    # between pixel centres cannot shift a sample much), and the file's 400/40 window shows it
    # without saturating.
    phase = (x * 5 + y * 3 + z * 11) % 700
    volume = (-150 + np.where(phase < 350, phase, 700 - phase)).astype(np.int32)
    cz, cy, cx = ROD_ORIGIN
    volume[cz - 1 : cz + 2, cy - 1 : cy + 2, cx - 1 : cx + ROD_VOXELS["x"] + 1] = ROD_HU
    volume[cz - 1 : cz + 2, cy - 1 : cy + ROD_VOXELS["y"] + 1, cx - 1 : cx + 2] = ROD_HU
    volume[cz - 1 : cz + ROD_VOXELS["z"] + 1, cy - 1 : cy + 2, cx - 1 : cx + 2] = ROD_HU
    return volume


def write_ct_volume(folder: Path) -> None:
    """The volume as one CT series, slice k at z = (k - 23.5) * 2 mm, files in shuffled order."""
    staging = folder.parent / f"{folder.name}-staging"
    paths = make_ct_series(staging, slices=SLICES, rows=ROWS, columns=COLUMNS, seed=7)
    volume = volume_hu()
    order = np.random.default_rng(11).permutation(SLICES)
    folder.mkdir(parents=True, exist_ok=True)
    for index, path in enumerate(paths):
        dataset = pydicom.dcmread(path)
        dataset.PatientName = VOLUME_PATIENT
        dataset.PatientID = "VIEWER-VOLUME"
        dataset.StudyDescription = "Viewer volume"
        dataset.PixelSpacing = [f"{SPACING_MM:.1f}", f"{SPACING_MM:.1f}"]
        dataset.SliceThickness = f"{SPACING_MM:.1f}"
        dataset.SpacingBetweenSlices = f"{SPACING_MM:.1f}"
        origin = -(COLUMNS - 1) * SPACING_MM / 2
        z = (index - (SLICES - 1) / 2) * SPACING_MM
        dataset.ImagePositionPatient = [f"{origin:.1f}", f"{origin:.1f}", f"{z:.1f}"]
        dataset.SliceLocation = f"{z:.1f}"
        # Instance numbers that disagree with the geometry: the viewer must sort by position.
        dataset.InstanceNumber = str(SLICES - index)
        dataset.WindowWidth, dataset.WindowCenter = (str(v) for v in CT_WINDOW)
        # A sequence, for the tag browser's indentation.
        code = pydicom.Dataset()
        code.CodeValue = "ZZ-VIEWER"
        code.CodingSchemeDesignator = "99SECUREPACS"
        code.CodeMeaning = "Viewer test volume"
        dataset.ProcedureCodeSequence = pydicom.Sequence([code])
        stored = volume[index] - int(dataset.RescaleIntercept)
        dataset.PixelData = stored.astype("<i2").tobytes()
        dataset.save_as(folder / f"slice-{int(order[index]):02d}.dcm", enforce_file_format=True)
    shutil.rmtree(staging)


def reference_grey(hu: NDArray[np.int32], width: float, center: float) -> NDArray[np.float64]:
    """Grey levels 0..255 of the DICOM linear window function."""
    grey = ((hu - (center - 0.5)) / (width - 1) + 0.5) * 255
    return np.clip(grey, 0, 255)


# -- cine --------------------------------------------------------------------------------------


def write_multiframe(folder: Path) -> None:
    """pydicom's 10-frame MR as a study of its own."""
    dataset = pydicom.dcmread(str(get_testdata_file("emri_small.dcm")))
    dataset.PatientName = CINE_PATIENT
    dataset.PatientID = "VIEWER-CINE"
    dataset.StudyInstanceUID = pydicom.uid.generate_uid()
    folder.mkdir(parents=True, exist_ok=True)
    dataset.save_as(folder / "emri_small.dcm", enforce_file_format=True)


def write_broken(folder: Path) -> None:
    """Two MR slices as a study whose stored copy a test then damages on the server."""
    source = pydicom.dcmread(str(get_testdata_file("MR_small.dcm")))
    study_uid, series_uid = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(1, BROKEN_INSTANCES + 1):
        source.PatientName = BROKEN_PATIENT
        source.PatientID = "VIEWER-BROKEN"
        source.StudyInstanceUID = study_uid
        source.SeriesInstanceUID = series_uid
        source.SOPInstanceUID = pydicom.uid.generate_uid()
        source.file_meta.MediaStorageSOPInstanceUID = source.SOPInstanceUID
        source.InstanceNumber = number
        source.save_as(folder / f"broken-{number}.dcm", enforce_file_format=True)


# -- transfer syntaxes -------------------------------------------------------------------------


@dataclass(frozen=True)
class Codec:
    """One file of the codecs study: shown by its series description."""

    source: str
    description: str
    transfer_syntax: str


CODECS: Final = (
    Codec("MR_small_implicit.dcm", "Implicit VR little endian", "1.2.840.10008.1.2"),
    Codec("MR_small_bigendian.dcm", "Explicit VR big endian", "1.2.840.10008.1.2.2"),
    Codec("image_dfl.dcm", "Deflated explicit VR", "1.2.840.10008.1.2.1.99"),
    Codec("MR_small_RLE.dcm", "RLE lossless", "1.2.840.10008.1.2.5"),
    Codec("SC_rgb_jpeg_dcmtk.dcm", "JPEG baseline", "1.2.840.10008.1.2.4.50"),
    Codec("JPEG-lossy.dcm", "JPEG extended 12-bit", "1.2.840.10008.1.2.4.51"),
    Codec("JPGLosslessP14SV1_1s_1f_8b.dcm", "JPEG lossless SV1", "1.2.840.10008.1.2.4.70"),
    Codec("MR_small_jpeg_ls_lossless.dcm", "JPEG-LS lossless", "1.2.840.10008.1.2.4.80"),
    Codec("JPEGLSNearLossless_16.dcm", "JPEG-LS near-lossless", "1.2.840.10008.1.2.4.81"),
    Codec("MR_small_jp2klossless.dcm", "JPEG 2000 lossless", "1.2.840.10008.1.2.4.90"),
    Codec("US1_J2KI.dcm", "JPEG 2000 irreversible", "1.2.840.10008.1.2.4.91"),
)
MPEG2_DESCRIPTION: Final = "MPEG2 video"
MPEG2_SYNTAX: Final = "1.2.840.10008.1.2.4.100"
SR_DESCRIPTION: Final = "Structured report"


def write_codecs(folder: Path) -> None:
    """One study: each codec file as its own series, the MPEG2 file and an SR."""
    study_uid = pydicom.uid.generate_uid()
    folder.mkdir(parents=True, exist_ok=True)

    def save(dataset: pydicom.Dataset, name: str, description: str) -> None:
        dataset.PatientName = CODECS_PATIENT
        dataset.PatientID = "VIEWER-CODECS"
        dataset.StudyInstanceUID = study_uid
        dataset.SeriesInstanceUID = pydicom.uid.generate_uid()
        dataset.SeriesDescription = description
        dataset.save_as(folder / name, enforce_file_format=True)

    for number, codec in enumerate(CODECS, start=1):
        dataset = pydicom.dcmread(str(get_testdata_file(codec.source)))
        assert dataset.file_meta.TransferSyntaxUID == codec.transfer_syntax, codec
        dataset.SeriesNumber = number
        save(dataset, codec.source, codec.description)
    # A video syntax no browser-side DICOM decoder handles: the header is real, the stream is
    # a few bytes of an MPEG2 sequence header, enough for the viewer to name the syntax.
    video = pydicom.dcmread(str(get_testdata_file("MR_small.dcm")))
    video.file_meta.TransferSyntaxUID = UID(MPEG2_SYNTAX)
    video.PixelData = encapsulate([b"\x00\x00\x01\xb3" + bytes(60)])
    video["PixelData"].VR = "OB"
    video.SeriesNumber = 90
    save(video, "video.dcm", MPEG2_DESCRIPTION)
    report = pydicom.dcmread(str(get_testdata_file("test-SR.dcm")))
    report.SeriesNumber = 91
    save(report, "report.dcm", SR_DESCRIPTION)


# -- plain mode --------------------------------------------------------------------------------


def plain_view(files: list[Path], url_prefix: str) -> dict[str, object]:
    """The StudyView JSON (client/web/src/study-source.ts) of ``files``, each with its url.

    The plain viewer (``/viewer#plain=<path>``) reads it: the same viewer code on the files
    served unencrypted.
    """
    instances = []
    first: pydicom.Dataset | None = None
    modalities: set[str] = set()
    for number, path in enumerate(files):
        dataset = pydicom.dcmread(path, stop_before_pixels=True)
        first = first or dataset
        modalities.add(str(dataset.get("Modality", "")))
        instances.append(
            {
                "fileId": f"{number:032x}",
                "seriesUid": str(dataset.SeriesInstanceUID),
                "instanceUid": str(dataset.SOPInstanceUID),
                "size": path.stat().st_size,
                "url": f"{url_prefix}{path.name}",
            }
        )
    assert first is not None, "a plain study needs at least one file"
    return {
        "studyId": "0" * 32,
        "patientName": str(first.get("PatientName", "")),
        "patientId": str(first.get("PatientID", "")),
        "patientSex": str(first.get("PatientSex", "")),
        "studyDate": str(first.get("StudyDate", "")),
        "studyDescription": str(first.get("StudyDescription", "")),
        "accessionNumber": str(first.get("AccessionNumber", "")),
        "modalities": sorted(modalities - {""}),
        "instances": instances,
        "zipName": "plain.zip",
        "zipPaths": {},
        "canDownload": True,
        "advanced": True,
    }

"""Every DICOM file pydicom and pydicom-data ship: round trip byte-identical, found by each field.

Also the ZK-1 canary for studies: a study whose PatientName, PatientID, AccessionNumber and
StudyInstanceUID are canary strings leaves none of them in the database, the blob store, the
logs, or any request the client sends.
"""

from __future__ import annotations

import base64
import logging
import shutil
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pydicom
import pytest
from litestar.testing import AsyncTestClient
from pydicom.data import get_testdata_file, get_testdata_files

from securepacs.client.api import ApiClient
from securepacs.client.dicom import read_instance, scan_folder
from securepacs.client.download import Downloader
from securepacs.client.library import load_rows
from securepacs.client.search import StudyFilter, search
from securepacs.client.upload import Uploader, UploadOptions
from securepacs.server.app import create_app
from securepacs.server.edge import CSRF_HEADER
from tests.server import canary
from tests.server.conftest import InProcessTransport, Person, sign_in

if TYPE_CHECKING:
    from collections.abc import Mapping

    from litestar import Litestar

    from securepacs.client.scanned import StudyAttributes
    from securepacs.client.transport import TransportResponse
    from securepacs.server.settings import Settings

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("cheap_kdf")]

# The one DICOM-named file that stays unsupported: no preamble, no meta, and pydicom itself
# parses it into a single meaningless element, so nothing tells it from arbitrary bytes.
NOT_RECOGNISABLE = {"no_meta.dcm"}


def _real_files() -> list[Path]:
    """pydicom's test files and pydicom-data's, every one that is a DICOM instance."""
    files: list[Path] = []
    for name in get_testdata_files():
        path = Path(name)
        if not path.is_file() or path.name in NOT_RECOGNISABLE:
            continue
        try:
            if read_instance(path) is not None:
                files.append(path)
        except Exception:  # noqa: BLE001, S112 -- not DICOM (json, text, icc): not in the bar
            continue
    return files


def test_the_bar_data_includes_pydicom_data_and_every_transfer_syntax() -> None:
    files = _real_files()
    # pydicom-data installs its files as the package `data_store`, next to pydicom's own.
    from_data_package = [p for p in files if "data_store" in p.parts]
    assert len(files) >= 200
    assert len(from_data_package) >= 40
    syntaxes = {read_instance(p)[0].transfer_syntax for p in files}  # type: ignore[index]
    assert len(syntaxes) >= 12, syntaxes


FIELDS = (
    "patient_name",
    "patient_id",
    "patient_sex",
    "accession_number",
    "referring_physician",
    "modality",
    "study_date",
)


def _filters(attributes: StudyAttributes) -> list[tuple[str, StudyFilter]]:
    found: list[tuple[str, StudyFilter]] = []
    if attributes.patient_name:
        found.append(("patient_name", StudyFilter(patient_name=attributes.patient_name)))
    if attributes.patient_id:
        found.append(("patient_id", StudyFilter(patient_id=attributes.patient_id)))
    if attributes.patient_sex in {"M", "F", "O"}:
        found.append(("patient_sex", StudyFilter(patient_sex=attributes.patient_sex)))
    if attributes.accession_number:
        found.append(("accession", StudyFilter(accession_number=attributes.accession_number)))
    if attributes.referring_physician:
        found.append(("referring", StudyFilter(referring_physician=attributes.referring_physician)))
    for modality in attributes.modalities:
        found.append(("modality", StudyFilter(modality=modality)))
    try:
        day = date(
            int(attributes.study_date[:4]),
            int(attributes.study_date[4:6]),
            int(attributes.study_date[6:8]),
        )
    except ValueError:
        day = None
    if day is not None:
        found.append(("study_date", StudyFilter(date_from=day, date_to=day)))
    return found


async def test_every_shipped_file_round_trips_and_is_found_by_each_field(
    client: AsyncTestClient[Litestar], settings: Settings, tmp_path: Path
) -> None:
    person = Person("real@example.org", "pw")
    await sign_in(client, settings, person)
    folder = tmp_path / "corpus"
    originals: dict[str, bytes] = {}
    for index, source in enumerate(_real_files()):
        target = folder / f"{index:04d}-{source.name}"
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(source, target)
        originals[target.name] = source.read_bytes()
    api = ApiClient(InProcessTransport(client))
    result = await Uploader(api, person.new.keys, scanner=scan_folder).upload_folder(
        folder, UploadOptions(jobs=4)
    )
    assert result.progress.parsed == len(originals)
    assert result.broken == []
    rows, failed = await load_rows(api, person.new.keys)
    assert failed == []
    # Downloads are byte-identical: compare as multisets (identical source files collapse).
    downloader = Downloader(api, person.new.keys)
    got: list[bytes] = []
    for row in rows:
        out = tmp_path / "out" / row.study_id
        await downloader.to_folder(row.study_id, out)
        got += [p.read_bytes() for p in out.rglob("*.dcm")]
    # Identical files carry identical UIDs, so they are one instance of one study.
    assert len(got) == len(set(originals.values()))
    assert set(got) == set(originals.values())
    # Each study is found by each search field it carries.
    attributes = [row.attributes for row in rows]
    today = date(2026, 11, 28)
    misses: list[tuple[str, str]] = []
    checked = 0
    for row in rows:
        for field, filter_ in _filters(row.attributes):
            checked += 1
            if not any(found is row.attributes for found in search(attributes, filter_, today)):
                misses.append((row.study_id[:12], field))
    assert checked > 4 * len(rows) // 2
    assert not misses, misses


CANARY = {
    "PatientName": "CANARY^PATIENT^Q7F3",
    "PatientID": "CANARYID9D21",
    "AccessionNumber": "CANARYACC55E1",
    "StudyInstanceUID": "1.2.826.0.1.3680043.9.7777.424242424242",
}


def _needles() -> dict[str, bytes]:
    needles: dict[str, bytes] = {}
    for name, value in CANARY.items():
        for codec in ("ascii", "utf-16-le", "utf-16-be"):
            needles[f"{name}:{codec}"] = value.encode(codec)
        raw = value.encode()
        needles[f"{name}:hex"] = raw.hex().encode()
        # Base64 of the value at each alignment inside a longer encoded field.
        for shift in range(3):
            encoded = base64.b64encode(b"\0" * shift + raw)[4 if shift else 0 :][:-4]
            needles[f"{name}:b64+{shift}"] = encoded
    return needles


class _Recording:
    """The client's transport, keeping every path and body it sends."""

    def __init__(self, inner: InProcessTransport) -> None:
        self.inner = inner
        self.sent: list[bytes] = []

    async def request(self, method: str, path: str, body: Any = None) -> TransportResponse:
        import msgspec

        self.sent.append(path.encode() + (msgspec.json.encode(body) if body is not None else b""))
        return await self.inner.request(method, path, body)

    async def send(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> TransportResponse:
        self.sent.append(path.encode() + repr(headers).encode() + (content or b""))
        return await self.inner.send(method, path, content=content, headers=headers)


async def test_canary_study_attributes_never_reach_the_server(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    folder = tmp_path / "canary"
    folder.mkdir()
    for index, (name, charset) in enumerate(
        (("CT_small.dcm", None), ("MR_small.dcm", "ISO_IR 192"), ("rtplan.dcm", "ISO_IR 100"))
    ):
        dataset = pydicom.dcmread(str(get_testdata_file(name)))
        for keyword, value in CANARY.items():
            setattr(dataset, keyword, value)
        if charset:
            dataset.SpecificCharacterSet = charset
        dataset.SOPInstanceUID = f"{CANARY['StudyInstanceUID']}.{index + 1}"
        dataset.save_as(folder / f"{index}.dcm")
    assert CANARY["PatientName"].encode() in (folder / "0.dcm").read_bytes()
    async with AsyncTestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        client.headers[CSRF_HEADER] = "1"
        person = Person("canary-study@example.org", "pw")
        await sign_in(client, settings, person)
        recording = _Recording(InProcessTransport(client))
        api = ApiClient(recording)
        result = await Uploader(api, person.new.keys, scanner=scan_folder).upload_folder(
            folder, UploadOptions()
        )
        assert result.studies[0].uploaded == 3
        rows, _ = await load_rows(api, person.new.keys)
        assert rows[0].attributes.patient_id == CANARY["PatientID"]
        await Downloader(api, person.new.keys).to_folder(rows[0].study_id, tmp_path / "back")
    logs = canary.logged(caplog)
    assert b"route=/api/v1/studies/{study_id}" in logs  # templates, not paths, are logged
    stored = canary.stored(settings)
    assert rows[0].study_id.encode() in stored  # the search sees the study table
    sent = b"\n".join(recording.sent)
    assert len(sent) > sum(p.stat().st_size for p in folder.iterdir())
    found = [
        (where, name)
        for name, needle in _needles().items()
        for where, haystack in (("storage", stored), ("logs", logs), ("requests", sent))
        if needle in haystack
    ]
    assert not found, f"canary values reached the server: {found}"

"""Upload and download through the real app in-process: round trips, appends, tampering, limits."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pydicom
import pytest
from pydicom.data import get_testdata_file

from securepacs.client.api import ApiClient
from securepacs.client.dicom import scan_folder
from securepacs.client.download import Downloader, IntegrityError, VersionMemory
from securepacs.client.library import load_rows
from securepacs.client.search import StudyFilter, search
from securepacs.client.transport import TransportFailure
from securepacs.client.upload import Uploader, UploadError, UploadOptions, UploadProgress
from securepacs.server.blobs import BlobStore
from securepacs.server.domain.studies.services import part_key
from securepacs.server.settings import Settings, load_settings
from tests.server.conftest import InProcessTransport, Person, sign_in

if TYPE_CHECKING:
    from collections.abc import Callable

    from litestar import Litestar
    from litestar.testing import AsyncTestClient

    from securepacs.client.scanned import Instance, ScanProgress, ScanReport, StudyAttributes
    from securepacs.server.settings import Settings

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("cheap_kdf")]


@pytest.fixture(params=["local-store", "s3-store"])
def settings(request: pytest.FixtureRequest, tmp_path: Path, database_url: str) -> Settings:
    """Each pipeline test runs on both databases and on both kinds of blob store."""
    env = {
        "SECUREPACS_DATA_DIR": str(tmp_path / "data"),
        "SECUREPACS_DATABASE_URL": database_url,
        "SECUREPACS_PUBLIC_URL": "http://127.0.0.1:8000",
    }
    if request.param == "s3-store":
        env["SECUREPACS_BLOB_URL"] = request.getfixturevalue("s3_store_url")
    return load_settings(env)


FILES = ("CT_small.dcm", "MR_small.dcm", "JPEGLSNearLossless_08.dcm", "rtplan.dcm")


def _folder(root: Path, names: tuple[str, ...] = FILES) -> Path:
    folder = root / "incoming"
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(str(get_testdata_file(name)), folder / name)
    (folder / "notes.txt").write_text("not DICOM")
    return folder


async def _account(client: AsyncTestClient[Litestar], settings: Settings) -> Person:
    person = Person("uma@example.org", "correct horse")
    await sign_in(client, settings, person)
    return person


def _tools(
    client: AsyncTestClient[Litestar], person: Person, tmp_path: Path
) -> tuple[ApiClient, Uploader, Downloader]:
    api = ApiClient(InProcessTransport(client))
    uploader = Uploader(api, person.new.keys, journal_dir=tmp_path / "journal", scanner=scan_folder)
    downloader = Downloader(api, person.new.keys, memory=VersionMemory(tmp_path / "seen.json"))
    return api, uploader, downloader


def _originals(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.suffix == ".dcm"}


async def test_a_folder_round_trips_byte_identical_and_is_found_again(
    client: AsyncTestClient[Litestar], settings: Settings, tmp_path: Path
) -> None:
    person = await _account(client, settings)
    api, uploader, downloader = _tools(client, person, tmp_path)
    folder = _folder(tmp_path)
    events: list[UploadProgress] = []
    uploader.on_progress = events.append
    result = await uploader.upload_folder(folder, UploadOptions(message="for Dr. Who"))
    assert len(result.studies) == len(FILES)
    assert result.unsupported == [str(folder / "notes.txt")]
    final = result.progress
    assert (final.found, final.parsed, final.unsupported) == (5, 4, 1)
    assert final.files_uploaded == final.files_total == 4
    assert final.bytes_uploaded == sum(len(b) for b in _originals(folder).values())
    assert events[-1].phase == "finished"
    rows, failed = await load_rows(api, person.new.keys)
    assert failed == []
    assert len(rows) == len(FILES)
    assert {row.message for row in rows} == {"for Dr. Who"}
    found = search(
        [r.attributes for r in rows],
        StudyFilter(patient_name="CompressedSamples*"),
        today=__import__("datetime").date(2026, 1, 1),
    )
    assert found
    originals = sorted(_originals(folder).values())
    downloaded: list[bytes] = []
    for row in rows:
        out = tmp_path / "out" / row.study_id
        await downloader.to_folder(row.study_id, out)
        downloaded += [p.read_bytes() for p in out.rglob("*.dcm")]
    assert sorted(downloaded) == originals
    stats = await api.stats()
    assert (stats.studies, stats.files) == (len(FILES), 4)
    assert stats.used_bytes > sum(map(len, originals))


async def test_uploading_twice_or_in_halves_gives_one_study(
    client: AsyncTestClient[Litestar], settings: Settings, tmp_path: Path
) -> None:
    person = await _account(client, settings)
    api, uploader, downloader = _tools(client, person, tmp_path)
    folder = tmp_path / "halves"
    folder.mkdir()
    # Two files of one study: the same CT with a second SOP instance UID.
    first = pydicom.dcmread(str(get_testdata_file("CT_small.dcm")))
    first.save_as(folder / "a.dcm")
    first.SOPInstanceUID = first.SOPInstanceUID + ".2"
    second_folder = tmp_path / "second"
    second_folder.mkdir()
    first.save_as(second_folder / "b.dcm")
    one = await uploader.upload_folder(folder, UploadOptions(verify=True))
    again = await uploader.upload_folder(folder, UploadOptions())
    assert again.studies[0].uploaded == 0
    assert again.studies[0].already_stored == 1
    two = await uploader.upload_folder(second_folder, UploadOptions())
    assert two.studies[0].appended
    assert two.studies[0].study_id == one.studies[0].study_id
    assert two.studies[0].manifest_version == 2
    rows, _ = await load_rows(api, person.new.keys)
    assert len(rows) == 1
    assert rows[0].instance_count == 2
    zip_path = tmp_path / "study.zip"
    await downloader.to_zip(rows[0].study_id, zip_path)
    with zipfile.ZipFile(zip_path) as archive:
        contents = sorted(archive.read(name) for name in archive.namelist())
    assert contents == sorted(
        [(folder / "a.dcm").read_bytes(), (second_folder / "b.dcm").read_bytes()]
    )


class _Part:
    """A stored part, read and overwritten through the blob store (any backend)."""

    def __init__(self, settings: Settings, blob_id: str) -> None:
        self.store = BlobStore(settings.blob_url)
        self.key = part_key(blob_id, 0)

    async def read(self) -> bytes:
        return await self.store.get(self.key)

    async def write(self, data: bytes) -> None:
        await self.store.put(self.key, data)


async def test_tampering_is_refused_naming_study_and_instance(
    client: AsyncTestClient[Litestar], settings: Settings, tmp_path: Path
) -> None:
    person = await _account(client, settings)
    api, uploader, downloader = _tools(client, person, tmp_path)
    await uploader.upload_folder(
        _folder(tmp_path, ("CT_small.dcm", "MR_small.dcm")), UploadOptions()
    )
    rows, _ = await load_rows(api, person.new.keys)
    ct, mr = sorted(rows, key=lambda r: r.attributes.modalities)
    ct_detail, mr_detail = await api.study(ct.study_id), await api.study(mr.study_id)
    # A flipped byte in a stored blob.
    part = _Part(settings, ct_detail.blob_ids[0])
    original = await part.read()
    damaged = bytearray(original)
    damaged[len(damaged) // 2] ^= 0x01
    await part.write(bytes(damaged))
    with pytest.raises(IntegrityError, match=f"study {ct.study_id[:12]}") as flipped:
        await downloader.to_folder(ct.study_id, tmp_path / "flipped")
    assert ct_detail.blob_ids and "Instance " in str(flipped.value)
    assert not list((tmp_path / "flipped").rglob("*.dcm"))
    await part.write(original)
    # A blob swapped between two studies.
    await part.write(await _Part(settings, mr_detail.blob_ids[0]).read())
    with pytest.raises(IntegrityError, match=r"Instance .* failed verification"):
        await downloader.to_folder(ct.study_id, tmp_path / "swapped")
    await part.write(original)
    await downloader.to_folder(ct.study_id, tmp_path / "fine")


async def test_a_file_of_several_parts_round_trips_and_resumes(
    client: AsyncTestClient[Litestar], settings: Settings, tmp_path: Path
) -> None:
    person = await _account(client, settings)
    api, uploader, downloader = _tools(client, person, tmp_path)
    folder = tmp_path / "large"
    folder.mkdir()
    dataset = pydicom.dcmread(str(get_testdata_file("CT_small.dcm")))
    block = dataset.private_block(0x0099, "SECUREPACS TEST", create=True)
    block.add_new(0x01, "OB", bytes(range(256)) * (20 * 1024 * 1024 // 256))  # 3 parts
    dataset.save_as(folder / "large.dcm")
    sent: list[int] = []
    put_part = api.put_part

    async def cut_after_one(
        blob_id: str, number: int, content: bytes, *, sha256: bytes | None = None
    ) -> Any:
        if sent:
            raise TransportFailure("ConnectError")
        sent.append(number)
        return await put_part(blob_id, number, content, sha256=sha256)

    api.put_part = cut_after_one  # type: ignore[method-assign]
    with pytest.raises(TransportFailure):
        await uploader.upload_folder(folder, UploadOptions(jobs=1, retry_attempts=1))
    resent: list[int] = []

    async def counting(
        blob_id: str, number: int, content: bytes, *, sha256: bytes | None = None
    ) -> Any:
        resent.append(number)
        return await put_part(blob_id, number, content, sha256=sha256)

    api.put_part = counting  # type: ignore[method-assign]
    result = await uploader.upload_folder(folder, UploadOptions(jobs=2))
    assert sorted(resent) == [1, 2], "the part the server holds is not sent again"
    assert result.studies[0].uploaded == 1
    study_id = result.studies[0].study_id
    detail = await api.study(study_id)
    status = await api.create_blob(detail.blob_ids[0], detail.summary.size)
    assert status.parts == 3
    assert status.complete
    await downloader.to_folder(study_id, tmp_path / "out")
    [back] = list((tmp_path / "out").rglob("*.dcm"))
    assert back.read_bytes() == (folder / "large.dcm").read_bytes()


async def test_an_awaited_reader_and_digest_give_the_same_studies(
    client: AsyncTestClient[Litestar], settings: Settings, tmp_path: Path
) -> None:
    # The browser worker's seams (File.arrayBuffer() and WebCrypto), stood in for by awaited
    # reads and hashlib: every file sent whole goes through them, and what comes back is the
    # original, verified against the manifest's hashes.
    person = await _account(client, settings)
    _api, uploader, downloader = _tools(client, person, tmp_path)
    read: list[str] = []
    hashed: list[int] = []

    async def reader(path: str) -> bytes:
        read.append(Path(path).name)
        return Path(path).read_bytes()

    async def digest(data: bytes) -> bytes:
        hashed.append(len(data))
        return hashlib.sha256(data).digest()

    uploader.reader, uploader.digest = reader, digest
    folder = _folder(tmp_path)
    result = await uploader.upload_folder(folder, UploadOptions(verify=True))
    assert sorted(read) == sorted(_originals(folder))
    assert len(hashed) == len(read)
    downloaded: list[bytes] = []
    for outcome in result.studies:
        out = tmp_path / "out" / outcome.study_id
        await downloader.to_folder(outcome.study_id, out)
        downloaded += [p.read_bytes() for p in out.rglob("*.dcm")]
    assert sorted(downloaded) == sorted(_originals(folder).values())


async def test_a_file_that_changed_since_the_scan_stops_the_upload_with_its_name(
    client: AsyncTestClient[Litestar], settings: Settings, tmp_path: Path
) -> None:
    person = await _account(client, settings)
    api, uploader, _ = _tools(client, person, tmp_path)
    folder = _folder(tmp_path, ("CT_small.dcm",))
    target = folder / "CT_small.dcm"

    def grown(
        folder: Path,
        on_progress: Callable[[ScanProgress], None] | None = None,
        *,
        on_instance: Callable[[Instance, StudyAttributes], None] | None = None,
    ) -> ScanReport:
        def grow_then_hand_over(instance: Instance, attributes: StudyAttributes) -> None:
            with target.open("ab") as handle:  # the file grows after the scan sized it
                handle.write(b"\0" * 100)
            if on_instance is not None:
                on_instance(instance, attributes)

        return scan_folder(folder, on_progress, on_instance=grow_then_hand_over)

    uploader.scanner = grown
    with pytest.raises(UploadError, match=r"CT_small\.dcm changed while it was being read"):
        await uploader.upload_folder(folder, UploadOptions())
    assert (await api.stats()).studies == 0

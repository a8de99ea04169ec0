"""The studies API on its own terms: parts, ranges, atomic commits, limits, deletion, sweeping."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import shutil
from datetime import timedelta
from typing import TYPE_CHECKING

import msgspec
import pydicom
import pytest
from litestar.testing import AsyncTestClient
from pydicom.data import get_testdata_file
from sqlalchemy import update

from securepacs.client.api import ApiClient, ApiError
from securepacs.client.dicom import scan_folder
from securepacs.client.download import Downloader, IntegrityError, VersionMemory
from securepacs.client.library import load_rows
from securepacs.client.transport import TransportFailure, TransportResponse
from securepacs.client.upload import Uploader, UploadOptions
from securepacs.server.app import create_app
from securepacs.server.blobs import BlobStore
from securepacs.server.context import ServerContext
from securepacs.server.db.base import utcnow
from securepacs.server.db.engine import create_engine, session_factory
from securepacs.server.db.models import Study
from securepacs.server.domain.studies.controllers import parse_range
from securepacs.server.domain.studies.services import PART_SIZE, part_key, sweep_orphans
from securepacs.server.errors import RangeNotSatisfiable
from securepacs.server.mail import OutboxMailer
from securepacs.server.ratelimit import RateLimiter
from securepacs.server.security import AuthKeyHasher
from securepacs.server.settings import load_settings
from tests.server.conftest import InProcessTransport, Person, sign_in

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path
    from typing import Any

    from litestar import Litestar

    from securepacs.server.settings import Settings

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("cheap_kdf")]


def _digest(data: bytes) -> dict[str, str]:
    value = base64.b64encode(hashlib.sha256(data).digest()).decode()
    return {"content-digest": f"sha-256=:{value}:", "content-type": "application/octet-stream"}


async def _me(client: AsyncTestClient[Litestar], settings: Settings, name: str = "ada") -> Person:
    person = Person(f"{name}@example.org", "pw")
    await sign_in(client, settings, person)
    return person


def test_ranges_follow_rfc_9110() -> None:
    assert parse_range(None, 10) is None
    assert parse_range("bytes=0-3", 10) == (0, 4)
    assert parse_range("bytes=4-", 10) == (4, 10)
    assert parse_range("bytes=-3", 10) == (7, 10)
    assert parse_range("bytes=8-100", 10) == (8, 10)
    for bad in ("bytes=10-", "bytes=5-2", "bytes=-", "items=0-1", "bytes=0-1,3-4"):
        with pytest.raises(RangeNotSatisfiable):
            parse_range(bad, 10)


async def test_parts_resume_after_a_restart_and_serve_ranges(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    await _me(client, settings)
    blob = "ab" * 16
    data = bytes(range(256)) * (PART_SIZE // 256) + b"tail" * 100
    created = await client.post(f"/api/v1/blobs/{blob}", json={"size": len(data)})
    assert created.json()["parts"] == 2
    first = data[:PART_SIZE]
    sent = await client.put(f"/api/v1/blobs/{blob}/parts/0", content=first, headers=_digest(first))
    assert sent.json()["received"] == [0]
    bad = await client.put(
        f"/api/v1/blobs/{blob}/parts/1", content=data[PART_SIZE:], headers=_digest(b"other")
    )
    assert bad.status_code == 422
    assert bad.json()["code"] == "checksum_mismatch"
    early = await client.post(f"/api/v1/blobs/{blob}/complete")
    assert early.status_code == 409
    assert "1 part(s)" in early.json()["detail"]
    # The server restarts: a new app on the same database and store knows what arrived.
    cookie = client.cookies.get("securepacs_session") or ""
    async with AsyncTestClient(create_app(settings), base_url="http://127.0.0.1:8000") as again:
        again.headers["X-SecurePACS-CSRF"] = "1"
        again.cookies.set("securepacs_session", cookie)
        status = await again.post(f"/api/v1/blobs/{blob}", json={"size": len(data)})
        assert status.json()["received"] == [0]
        rest = data[PART_SIZE:]
        await again.put(f"/api/v1/blobs/{blob}/parts/1", content=rest, headers=_digest(rest))
        done = await again.post(f"/api/v1/blobs/{blob}/complete")
        assert done.json()["complete"] is True
        whole = await again.get(f"/api/v1/blobs/{blob}")
        assert whole.content == data
        span = await again.get(
            f"/api/v1/blobs/{blob}", headers={"range": f"bytes={PART_SIZE - 5}-{PART_SIZE + 4}"}
        )
        assert span.status_code == 206
        assert span.content == data[PART_SIZE - 5 : PART_SIZE + 5]
        assert span.headers["content-range"] == f"bytes {PART_SIZE - 5}-{PART_SIZE + 4}/{len(data)}"
        outside = await again.get(f"/api/v1/blobs/{blob}", headers={"range": "bytes=99999999-"})
        assert outside.status_code == 416


async def test_a_commit_is_all_or_nothing(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    await _me(client, settings)
    ready, unfinished = "01" * 16, "02" * 16
    await client.put(f"/api/v1/blobs/{ready}", content=b"x" * 100, headers=_digest(b"x" * 100))
    await client.post(f"/api/v1/blobs/{unfinished}", json={"size": 50})
    body = {
        "uid_tag": base64.b64encode(b"t" * 32).decode(),
        "wrapped_key": base64.b64encode(b"k").decode(),
        "metadata": base64.b64encode(b"m").decode(),
        "manifest": base64.b64encode(b"f").decode(),
        "manifest_version": 1,
        "blob_ids": [ready, unfinished],
    }
    refused = await client.put(f"/api/v1/studies/{'0f' * 16}", json=body)
    assert refused.status_code == 409
    assert refused.json()["code"] == "upload_incomplete"
    assert (await client.get("/api/v1/studies/")).json()["studies"] == []
    body["blob_ids"] = [ready]
    assert (await client.put(f"/api/v1/studies/{'0f' * 16}", json=body)).status_code == 200
    again = await client.put(f"/api/v1/studies/{'0f' * 16}", json=body)
    assert again.status_code == 200, "a retried commit is answered, not refused"
    other = await client.put(f"/api/v1/studies/{'1f' * 16}", json=body)
    assert other.json()["code"] in {"duplicate_study", "conflict"}
    stale = dict(body, manifest_version=3, manifest=base64.b64encode(b"g").decode())
    assert (await client.put(f"/api/v1/studies/{'0f' * 16}", json=stale)).status_code == 409


async def test_a_batch_commit_commits_each_study_on_its_own(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    await _me(client, settings)
    blobs = ["a1" * 16, "a2" * 16, "a3" * 16]
    for blob_id in blobs:
        await client.put(
            f"/api/v1/blobs/{blob_id}", content=blob_id.encode(), headers=_digest(blob_id.encode())
        )

    def commit(study_id: str, tag: bytes, blob_ids: list[str]) -> dict[str, Any]:
        return {
            "study_id": study_id,
            "uid_tag": base64.b64encode(tag * 32).decode(),
            "wrapped_key": base64.b64encode(b"k").decode(),
            "metadata": base64.b64encode(b"m").decode(),
            "manifest": base64.b64encode(b"f").decode(),
            "manifest_version": 1,
            "blob_ids": blob_ids,
        }

    commits = [
        commit("0a" * 16, b"a", [blobs[0]]),
        commit("0b" * 16, b"b", [blobs[1], "ff" * 16]),  # a blob that never arrived
        commit("0c" * 16, b"c", [blobs[2]]),
        commit("0d" * 16, b"a", [blobs[1]]),  # the UID tag of the first study
    ]
    answer = await client.post("/api/v1/studies/commits", json={"commits": commits})
    assert answer.status_code == 200
    assert [(r["study_id"], r["code"]) for r in answer.json()["results"]] == [
        ("0a" * 16, None),
        ("0b" * 16, "upload_incomplete"),
        ("0c" * 16, None),
        ("0d" * 16, "duplicate_study"),
    ]
    listed = (await client.get("/api/v1/studies/")).json()["studies"]
    assert sorted(s["study_id"] for s in listed) == ["0a" * 16, "0c" * 16]
    retried = await client.post("/api/v1/studies/commits", json={"commits": commits[:1]})
    assert retried.json()["results"] == [{"study_id": "0a" * 16, "code": None, "detail": None}]
    too_many = await client.post("/api/v1/studies/commits", json={"commits": [commits[2]] * 101})
    assert too_many.status_code in {400, 422}


def _folder(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    for name in names:
        shutil.copyfile(str(get_testdata_file(name)), folder / name)
    return folder


async def test_the_storage_limit_is_enforced_and_deleting_frees_space(
    client: AsyncTestClient[Litestar], tmp_path: Path, database_url: str
) -> None:
    del client
    settings = load_settings(
        {
            "SECUREPACS_DATA_DIR": str(tmp_path / "data"),
            "SECUREPACS_DATABASE_URL": database_url,
            "SECUREPACS_STORAGE_LIMIT_MB": "1",
        }
    )
    async with AsyncTestClient(create_app(settings), base_url="http://127.0.0.1:8000") as small:
        small.headers["X-SecurePACS-CSRF"] = "1"
        person = await _me(small, settings, "lim")
        api = ApiClient(InProcessTransport(small))
        uploader = Uploader(api, person.new.keys, scanner=scan_folder)
        await uploader.upload_folder(_folder(tmp_path, "CT_small.dcm"), UploadOptions())
        full = await small.post(f"/api/v1/blobs/{'ee' * 16}", json={"size": 1_020_000})
        assert full.status_code == 413
        problem = full.json()
        assert problem["code"] == "storage_limit_reached"
        assert "Delete studies" in problem["detail"]
        assert "MB" in problem["detail"]
        stats = await api.stats()
        assert stats.limit_bytes == 1024 * 1024
        assert stats.used_bytes > 39_000
        rows, _ = await load_rows(api, person.new.keys)
        detail = await api.study(rows[0].study_id)
        store = BlobStore(settings.blob_url)
        assert await store.get(part_key(detail.blob_ids[0], 0))
        await api.delete_study(rows[0].study_id)
        assert (await api.stats()).used_bytes == 0
        with pytest.raises(FileNotFoundError):
            await store.get(part_key(detail.blob_ids[0], 0))
        with pytest.raises(ApiError) as gone:
            await api.study(rows[0].study_id)
        assert gone.value.status == 404
        assert (await small.post(f"/api/v1/blobs/{'ee' * 16}", json={"size": 1_020_000})).is_success


async def test_abandoned_uploads_are_swept_after_the_ttl(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    await _me(client, settings)
    blob = "cd" * 16
    await client.post(f"/api/v1/blobs/{blob}", json={"size": 10})
    await client.put(
        f"/api/v1/blobs/{blob}/parts/0", content=b"0123456789", headers=_digest(b"0123456789")
    )
    engine = create_engine(settings.database_url)
    try:
        context = ServerContext(
            settings=settings,
            engine=engine,
            sessions=session_factory(engine),
            hasher=AuthKeyHasher(1),
            mailer=OutboxMailer(settings.outbox_dir),
            limiter=RateLimiter(),
            blobs=BlobStore(settings.blob_url),
        )
        assert await sweep_orphans(context) == 0
        later = utcnow() + timedelta(hours=settings.upload_ttl_hours, minutes=1)
        assert await sweep_orphans(context, now=later) == 1
    finally:
        await engine.dispose()
    status = await client.post(f"/api/v1/blobs/{blob}", json={"size": 10})
    assert status.json()["received"] == [], "the upload starts from nothing again"
    with pytest.raises(FileNotFoundError):
        await BlobStore(settings.blob_url).get(part_key(blob, 0))


async def test_an_old_manifest_is_refused_naming_the_study(
    client: AsyncTestClient[Litestar], settings: Settings, tmp_path: Path
) -> None:
    person = await _me(client, settings)
    api = ApiClient(InProcessTransport(client))
    uploader = Uploader(api, person.new.keys, scanner=scan_folder)
    dataset = pydicom.dcmread(str(get_testdata_file("CT_small.dcm")))
    first, second = tmp_path / "one", tmp_path / "two"
    first.mkdir()
    second.mkdir()
    dataset.save_as(first / "a.dcm")
    await uploader.upload_folder(first, UploadOptions())
    rows, _ = await load_rows(api, person.new.keys)
    old = await api.study(rows[0].study_id)
    dataset.SOPInstanceUID += ".9"
    dataset.save_as(second / "b.dcm")
    await uploader.upload_folder(second, UploadOptions())
    downloader = Downloader(api, person.new.keys, memory=VersionMemory(tmp_path / "seen.json"))
    await downloader.to_folder(rows[0].study_id, tmp_path / "v2")
    # The server serves the version-1 manifest with the version-2 study record.
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as db:
            await db.execute(
                update(Study).where(Study.id == rows[0].study_id).values(manifest=old.manifest)
            )
            await db.commit()
        with pytest.raises(IntegrityError, match=rf"study {rows[0].study_id[:12]}.*version 1"):
            await downloader.to_folder(rows[0].study_id, tmp_path / "rolled-back")
        # Even with the old metadata box too, this client remembers having seen version 2.
        async with session_factory(engine)() as db:
            await db.execute(
                update(Study)
                .where(Study.id == rows[0].study_id)
                .values(metadata_box=old.summary.metadata, manifest_version=1)
            )
            await db.commit()
        with pytest.raises(IntegrityError, match="version 2 exists"):
            await downloader.to_folder(rows[0].study_id, tmp_path / "rolled-back-2")
    finally:
        await engine.dispose()


class _Flaky:
    """A transport that drops the connection after ``budget`` requests that carry blobs."""

    def __init__(self, inner: InProcessTransport, budget: int) -> None:
        self.inner = inner
        self.budget = budget
        self.sent_bytes = 0

    async def request(self, method: str, path: str, body: Any = None) -> TransportResponse:
        return await self.inner.request(method, path, body)

    async def send(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> TransportResponse:
        if content:
            if self.budget <= 0:
                raise TransportFailure("ConnectError")
            self.budget -= 1
            self.sent_bytes += len(content or b"")
        return await self.inner.send(method, path, content=content, headers=headers)


async def test_a_killed_upload_resumes_without_sending_parts_again(
    client: AsyncTestClient[Litestar],
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("securepacs.client.upload.BATCH_ITEMS", 2)  # several batches
    person = await _me(client, settings)
    names = ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "rtdose.dcm", "waveform_ecg.dcm")
    folder = _folder(tmp_path, *names)
    journal = tmp_path / "journal"
    flaky = _Flaky(InProcessTransport(client), budget=1)
    broken = Uploader(ApiClient(flaky), person.new.keys, journal_dir=journal, scanner=scan_folder)
    with pytest.raises(TransportFailure):
        await broken.upload_folder(folder, UploadOptions(jobs=1, retry_attempts=1))
    api = ApiClient(InProcessTransport(client))
    assert (await api.list_studies()) == [] or len(await api.list_studies()) < len(names)
    assert list(journal.glob("*.json")), "the journal remembers the interrupted upload"
    resumed = _Flaky(InProcessTransport(client), budget=1000)
    result = await Uploader(
        ApiClient(resumed), person.new.keys, journal_dir=journal, scanner=scan_folder
    ).upload_folder(folder, UploadOptions())
    assert sum(o.uploaded + o.already_stored for o in result.studies) == len(names)
    sizes = [(folder / n).stat().st_size for n in names]
    assert resumed.sent_bytes < sum(sizes) - min(sizes), "files done before the cut are not resent"
    assert not list(journal.glob("*.json")), "a finished upload leaves no journal"
    rows, _ = await load_rows(api, person.new.keys)
    assert sum(row.instance_count for row in rows) == len(names)
    downloader = Downloader(api, person.new.keys)
    got: list[bytes] = []
    for row in rows:
        await downloader.to_folder(row.study_id, tmp_path / "out" / row.study_id)
        got += [p.read_bytes() for p in (tmp_path / "out" / row.study_id).rglob("*.dcm")]
    assert sorted(got) == sorted((folder / n).read_bytes() for n in names)


async def test_another_account_sees_none_of_my_studies_or_blobs(
    client: AsyncTestClient[Litestar], settings: Settings, tmp_path: Path
) -> None:
    owner = await _me(client, settings, "own")
    api = ApiClient(InProcessTransport(client))
    await Uploader(api, owner.new.keys, scanner=scan_folder).upload_folder(
        _folder(tmp_path, "CT_small.dcm"), UploadOptions()
    )
    study = (await api.list_studies())[0]
    blob = (await api.study(study.study_id)).blob_ids[0]
    client.cookies.clear()
    await _me(client, settings, "eve")
    assert (await client.get("/api/v1/studies/")).json()["studies"] == []
    for method, path in (
        ("GET", f"/api/v1/studies/{study.study_id}"),
        ("DELETE", f"/api/v1/studies/{study.study_id}"),
        ("GET", f"/api/v1/blobs/{blob}"),
        ("POST", f"/api/v1/blobs/{blob}/complete"),
        ("DELETE", f"/api/v1/blobs/{blob}"),
    ):
        response = await client.request(method, path)
        assert response.status_code == 404, (method, path)
    taken = await client.post(f"/api/v1/blobs/{blob}", json={"size": 10})
    assert taken.status_code == 409
    lookup = await client.post(
        "/api/v1/studies/lookup", json={"uid_tags": [base64.b64encode(study.uid_tag).decode()]}
    )
    assert lookup.json()["studies"] == []


async def test_concurrent_retries_of_one_blob_are_stored_and_counted_once(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    await _me(client, settings)
    data = b"sealed" * 1000
    blob = "9a" * 16
    answers = await asyncio.gather(
        *(
            client.put(f"/api/v1/blobs/{blob}", content=data, headers=_digest(data))
            for _ in range(4)
        )
    )
    assert [a.status_code for a in answers] == [200] * 4
    assert all(a.json()["complete"] for a in answers)
    big = "9b" * 16
    created = await asyncio.gather(
        *(client.post(f"/api/v1/blobs/{big}", json={"size": PART_SIZE + 1}) for _ in range(4))
    )
    assert [c.status_code for c in created] == [200] * 4
    # The same batch sent four times at once: one stores it, the others find it stored.
    items = [(f"{n:02x}" * 16, bytes([n]) * 300) for n in range(0xC0, 0xC8)]
    batches = await asyncio.gather(
        *(
            client.post(
                "/api/v1/blobs/batch",
                content=_batch(*items),
                headers={"content-type": "application/msgpack"},
            )
            for _ in range(4)
        )
    )
    assert [b.status_code for b in batches] == [200] * 4
    stats = (await client.get("/api/v1/studies/stats")).json()
    assert stats["used_bytes"] == len(data) + PART_SIZE + 1 + 300 * len(items)


def _batch(*items: tuple[str, bytes], sha: bytes | None = None) -> bytes:
    return msgspec.msgpack.encode(
        [(bytes.fromhex(i), sha or hashlib.sha256(d).digest(), d) for i, d in items]
    )


async def test_batches_store_small_blobs_at_once_and_answer_retries(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    await _me(client, settings)
    items = [(f"{n:02x}" * 16, bytes([n]) * (1000 + n)) for n in range(1, 6)]
    headers = {"content-type": "application/msgpack"}
    first = await client.post("/api/v1/blobs/batch", content=_batch(*items), headers=headers)
    assert first.json() == {"stored": 5, "already_stored": 0}
    again = await client.post("/api/v1/blobs/batch", content=_batch(*items), headers=headers)
    assert again.json() == {"stored": 0, "already_stored": 5}
    for blob_id, data in items:
        assert (await client.get(f"/api/v1/blobs/{blob_id}")).content == data
    stats = (await client.get("/api/v1/studies/stats")).json()
    assert stats["used_bytes"] == sum(len(d) for _, d in items)
    bad = [
        b"not msgpack",
        _batch(("aa" * 16, b"x"), sha=b"\0" * 32),
        _batch(("aa" * 16, b"x"), ("aa" * 16, b"x")),
        _batch(*[(f"{n:032x}", b"x") for n in range(600)]),
        _batch(("bb" * 16, b"x" * (PART_SIZE + 1))),
    ]
    codes = [
        (await client.post("/api/v1/blobs/batch", content=body, headers=headers)).json()["code"]
        for body in bad
    ]
    assert codes[0] == "invalid_input"
    assert codes[1] == "checksum_mismatch"
    assert codes[2:] in (["invalid_input"] * 3, ["invalid_input", "invalid_input", "http_413"])
    client.cookies.clear()
    await _me(client, settings, "mallory")
    taken = await client.post("/api/v1/blobs/batch", content=_batch(items[0]), headers=headers)
    assert taken.status_code == 409


async def test_read_many_streams_whole_blobs_in_the_order_asked_and_only_readable_ones(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    await _me(client, settings)
    items = [(f"{n:02x}" * 16, bytes([n]) * (700 + n)) for n in range(1, 4)]
    headers = {"content-type": "application/msgpack"}
    await client.post("/api/v1/blobs/batch", content=_batch(*items), headers=headers)
    # A blob of two parts, to cross a part boundary inside one answer.
    big_id, big = "ee" * 16, bytes(range(256)) * ((PART_SIZE + 3000) // 256)
    await client.post(f"/api/v1/blobs/{big_id}", json={"size": len(big)})
    await client.put(
        f"/api/v1/blobs/{big_id}/parts/0", content=big[:PART_SIZE], headers=_digest(big[:PART_SIZE])
    )
    await client.put(
        f"/api/v1/blobs/{big_id}/parts/1", content=big[PART_SIZE:], headers=_digest(big[PART_SIZE:])
    )
    assert (await client.post(f"/api/v1/blobs/{big_id}/complete")).status_code == 200

    order = [items[2][0], big_id, items[0][0], items[2][0]]
    answered = await client.post("/api/v1/blobs/read", json={"ids": order})
    assert answered.status_code == 200
    assert answered.headers["cache-control"] == "private, no-store"
    expected = items[2][1] + big + items[0][1] + items[2][1]
    assert int(answered.headers["content-length"]) == len(expected)
    assert answered.content == expected

    # Any id that is unknown, incomplete or someone else's refuses the whole request.
    await client.post("/api/v1/blobs/" + "cc" * 16, json={"size": 10})
    for ids in ([items[0][0], "dd" * 16], ["cc" * 16]):
        refused = await client.post("/api/v1/blobs/read", json={"ids": ids})
        assert (refused.status_code, refused.json()["code"]) == (404, "not_found")
    for bad in ([], ["xyz"], [f"{n:032x}" for n in range(513)]):
        invalid = await client.post("/api/v1/blobs/read", json={"ids": bad})
        assert invalid.status_code == 400
    client.cookies.clear()
    await _me(client, settings, "eve")
    stranger = await client.post("/api/v1/blobs/read", json={"ids": [items[0][0]]})
    assert stranger.status_code == 404

"""The upload pipeline: scan, seal each instance as a stream, send parts in parallel, commit.

Memory stays bounded whatever the size of a study: a file is read and sealed one part (8 MiB)
at a time, and at most ``jobs`` parts are in flight. Sealing runs in worker threads where the
platform has them, so it overlaps with the network. A study already stored (found by its keyed
UID tag) is appended to: only instances it lacks are sent, under a new manifest version. The
study becomes visible in one commit after all its blobs are complete; a killed upload resumes
from the journal (client/journal.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Final, Literal, TypeVar

import msgspec

from securepacs.client.api import ApiError
from securepacs.client.dicom import StudyAttributes, scan_folder
from securepacs.client.journal import Journal, JournalFile, JournalStudy
from securepacs.client.retry import RetryPolicy, retrying
from securepacs.client.sealing import SealedInstance, StudySeal
from securepacs.client.tasks import first_error
from securepacs.crypto import (
    ciphertext_size,
    new_file_id,
    open_manifest,
    study_uid_tag,
    unwrap_study_key,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from securepacs.client.api import ApiClient, StudySummaryView
    from securepacs.client.dicom import Instance, ScanProgress, StudyScan
    from securepacs.crypto import AccountKeys, ManifestEntry, StudyKey

__all__ = (
    "PART_BYTES",
    "StudyOutcome",
    "UploadError",
    "UploadOptions",
    "UploadProgress",
    "UploadResult",
    "Uploader",
)

# Files up to this sealed size go many to a request (at most BATCH_ITEMS, PART_BYTES in all).
BATCH_ITEM_BYTES: Final = 2 * 1024 * 1024
BATCH_ITEMS: Final = 512
# Study UID tags asked about per request (the server accepts up to 1,000).
LOOKUP_BATCH: Final = 1000
# The server's part size (server/domain/studies/services.py PART_SIZE); a blob that fits in
# one part goes in a single request.
PART_BYTES: Final = 8 * 1024 * 1024
T = TypeVar("T")
Phase = Literal["scanning", "uploading", "committing", "verifying", "finished"]


class UploadError(Exception):
    """The upload stopped; the message says what happened and what to do next."""


class UploadProgress(msgspec.Struct, frozen=True, kw_only=True):
    """The counts the upload panel shows (user manual, Upload Studies)."""

    phase: Phase
    found: int = 0
    parsed: int = 0
    unsupported: int = 0
    broken: int = 0
    files_total: int = 0
    files_uploaded: int = 0
    files_already_stored: int = 0
    bytes_total: int = 0
    bytes_uploaded: int = 0
    elapsed: float = 0.0
    message: str = ""

    @property
    def speed(self) -> float:
        """Plaintext bytes per second so far."""
        return self.bytes_uploaded / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def percent(self) -> float:
        """Share of the bytes to send that were sent."""
        return 100.0 * self.bytes_uploaded / self.bytes_total if self.bytes_total else 100.0


class UploadOptions(msgspec.Struct, frozen=True, kw_only=True):
    """Choices of the person uploading."""

    sender_email: str = ""
    message: str = ""
    jobs: int = 4
    verify: bool = False
    retry_attempts: int = 8


class StudyOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What happened to one study of the folder."""

    study_id: str
    attributes: StudyAttributes
    uploaded: int
    already_stored: int
    manifest_version: int
    appended: bool


class UploadResult(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the upload did."""

    studies: list[StudyOutcome]
    unsupported: list[str]
    broken: list[tuple[str, str]]
    progress: UploadProgress


def _threaded() -> bool:
    # Pyodide has no threads; there sealing runs on the event loop between network waits.
    return sys.platform != "emscripten"


# Two sealing threads keep both cores of a small machine busy; more would only add memory
# (each thread gets its own allocator arena) without sealing faster.
_SEALERS: Final = ThreadPoolExecutor(max_workers=2, thread_name_prefix="securepacs-seal")


async def _offload(function: Callable[[], T]) -> T:
    if _threaded():
        return await asyncio.get_running_loop().run_in_executor(_SEALERS, function)
    return function()


def _take(pieces: Iterator[bytes], size: int, carry: bytearray) -> bytes:
    """The next ``size`` bytes of sealed output (fewer at the end; empty when done)."""
    for piece in pieces:
        carry += piece
        if len(carry) >= size:
            break
    with memoryview(carry) as view:
        part = bytes(view[:size])  # one copy; the view is released before carry shrinks
    del carry[:size]
    return part


class Uploader:
    """Uploads folders for one signed-in account."""

    def __init__(
        self,
        api: ApiClient,
        keys: AccountKeys,
        *,
        journal_dir: Path | None = None,
        on_progress: Callable[[UploadProgress], None] | None = None,
    ) -> None:
        self.api = api
        self.keys = keys
        self.journal_dir = journal_dir
        self.on_progress = on_progress
        self._progress = UploadProgress(phase="scanning")
        self._slots = asyncio.Semaphore(4)
        self._large = asyncio.Semaphore(1)
        self._started = time.monotonic()
        self._last_emit = 0.0

    # Progress ------------------------------------------------------------------------------

    def _update(self, force: bool = False, **changes: object) -> None:
        now = time.monotonic()
        self._progress = msgspec.structs.replace(
            self._progress, elapsed=now - self._started, **changes
        )
        # Several events per second are plenty for a person; more would slow the pipeline.
        if self.on_progress is not None and (force or now - self._last_emit >= 0.1):
            self._last_emit = now
            self.on_progress(self._progress)

    def _scanned(self, scan: ScanProgress) -> None:
        self._update(
            found=scan.found, parsed=scan.parsed, unsupported=scan.unsupported, broken=scan.broken
        )

    def _retry_message(self, message: str) -> None:
        self._update(force=True, message=message)

    # Pipeline ------------------------------------------------------------------------------

    async def upload_folder(self, folder: Path, options: UploadOptions) -> UploadResult:
        """Scan ``folder`` and upload every study in it.

        Raises:
            UploadError: the upload cannot go on (the message says why and what to do).
            ApiError: the server refused something that retrying cannot cure.
        """
        self._started = time.monotonic()
        if not folder.is_dir():
            raise UploadError(f"{folder} is not a folder. Choose the folder that holds the study.")
        report = await _offload(lambda: scan_folder(folder, self._scanned))
        self._scanned(report.progress())
        if not report.studies:
            raise UploadError(
                f"No DICOM files were found in {folder} ({report.found} files looked at, "
                f"{len(report.unsupported)} unsupported). Choose the folder that holds the study."
            )
        journal = Journal.for_folder(self.journal_dir, folder)
        files = sum(study.instance_count for study in report.studies.values())
        size = sum(i.size for s in report.studies.values() for m in s.series.values() for i in m)
        self._update(force=True, phase="uploading", files_total=files, bytes_total=size)
        policy = RetryPolicy(attempts=options.retry_attempts, on_retry=self._retry_message)
        scans = [scan for _, scan in sorted(report.studies.items())]
        tags = [
            study_uid_tag(self.keys.account_key, s.attributes.study_instance_uid) for s in scans
        ]
        stored: dict[bytes, StudySummaryView] = {}
        for start in range(0, len(tags), LOOKUP_BATCH):
            for summary in await self._lookup(tags[start : start + LOOKUP_BATCH], policy):
                stored[summary.uid_tag] = summary
        # Requests in flight are bounded across all studies; several small studies move at
        # once, so a folder of one-file studies is not paced by round trips.
        self._slots = asyncio.Semaphore(max(1, options.jobs))
        self._large = asyncio.Semaphore(1)
        studies_at_once = asyncio.Semaphore(max(1, options.jobs))

        async def one(scan: StudyScan, tag: bytes) -> StudyOutcome:
            async with studies_at_once:
                return await self._upload_study(
                    scan, tag, stored.get(tag), journal, options, policy
                )

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(one(scan, tag)) for scan, tag in zip(scans, tags, strict=True)
                ]
        except ExceptionGroup as errors:
            raise first_error(errors) from None
        outcomes = [task.result() for task in tasks]
        self._update(force=True, phase="finished", message="Upload finished!")
        return UploadResult(
            studies=outcomes,
            unsupported=report.unsupported,
            broken=report.broken,
            progress=self._progress,
        )

    async def _lookup(self, tags: list[bytes], policy: RetryPolicy) -> list[StudySummaryView]:
        return await retrying(policy, lambda: self.api.lookup_studies(tags))

    async def _upload_study(
        self,
        scan: StudyScan,
        tag: bytes,
        summary: StudySummaryView | None,
        journal: Journal,
        options: UploadOptions,
        policy: RetryPolicy,
    ) -> StudyOutcome:
        keys = self.keys
        pending = journal.study(tag)
        base_entries: tuple[ManifestEntry, ...] = ()
        base_version = 0
        attributes = scan.attributes
        if summary is not None:
            study_id = bytes.fromhex(summary.study_id)
            study_key = unwrap_study_key(keys.account_key, study_id, summary.wrapped_key)
            seal = StudySeal(keys, study_key=study_key, study_id=study_id)
            detail = await retrying(policy, lambda: self.api.study(summary.study_id))
            manifest = open_manifest(study_key, study_id, detail.manifest, {keys.public.ed25519})
            base_entries, base_version = manifest.entries, manifest.manifest_version
            stored = seal.open_metadata(summary.metadata)
            attributes = _merge(stored.attributes, scan.attributes)
            if pending is not None and pending.study_id != study_id:
                pending = None  # sealed for a study that lost a race; the server sweeps it
        elif pending is not None:
            study_key = unwrap_study_key(keys.account_key, pending.study_id, pending.wrapped_key)
            seal = StudySeal(keys, study_key=study_key, study_id=pending.study_id)
        else:
            seal = StudySeal(keys)
        todo = await _offload(lambda: _new_instances(seal.study_key, scan, base_entries))
        skipped = scan.instance_count - len(todo)
        skipped_bytes = scan_bytes(scan) - sum(i.size for i in todo)
        self._update(
            files_already_stored=self._progress.files_already_stored + skipped,
            bytes_total=self._progress.bytes_total - skipped_bytes,
        )
        if not todo:
            return StudyOutcome(
                study_id=seal.study_id.hex(),
                attributes=attributes,
                uploaded=0,
                already_stored=skipped,
                manifest_version=base_version,
                appended=False,
            )
        if pending is None:
            pending = journal.begin(
                tag, JournalStudy(study_id=seal.study_id, wrapped_key=seal.wrapped_key())
            )
        resumed: set[str] = set()
        for instance in todo:
            stat = _stat(instance.path)
            known = pending.files.get(instance.path)
            if known is None or (known.size, known.mtime_ns) != stat:
                pending.files[instance.path] = JournalFile(
                    size=stat[0], mtime_ns=stat[1], file_id=new_file_id()
                )
            else:
                resumed.add(instance.path)
        journal.save()
        entries = await self._send_all(
            seal.study_key, todo, pending, journal, options, policy, resumed
        )
        journal.save()
        version = base_version + 1
        all_entries = [*base_entries, *entries]
        self._update(force=True, phase="committing")
        metadata = seal.metadata(
            attributes,
            sender_email=options.sender_email,
            message=options.message,
            instance_count=len(all_entries),
            manifest_version=version,
        )
        body = {
            "uid_tag": _b64(tag),
            "wrapped_key": _b64(seal.wrapped_key()),
            "metadata": _b64(metadata),
            "manifest": _b64(seal.manifest(version, all_entries)),
            "manifest_version": version,
            "blob_ids": [entry.file_id.hex() for entry in all_entries],
        }
        try:
            await retrying(policy, lambda: self.api.commit_study(seal.study_id.hex(), body))
        except ApiError as error:
            if error.code == "upload_incomplete":
                # The server lost parts the journal believed sent; send them again next run.
                for instance in todo:
                    pending.files[instance.path].entry = None
                journal.save()
            raise UploadError(
                f"The study could not be saved: {error.detail} Running the same upload again "
                "resumes where it stopped."
            ) from None
        journal.finish(tag)
        if options.verify:
            self._update(force=True, phase="verifying")
            await self._verify(seal, version, todo, policy)
        self._update(force=True, phase="uploading")
        return StudyOutcome(
            study_id=seal.study_id.hex(),
            attributes=attributes,
            uploaded=len(todo),
            already_stored=skipped,
            manifest_version=version,
            appended=base_version > 0,
        )

    async def _send_all(
        self,
        study_key: StudyKey,
        todo: list[Instance],
        pending: JournalStudy,
        journal: Journal,
        options: UploadOptions,
        policy: RetryPolicy,
        resumed: set[str],
    ) -> list[ManifestEntry]:
        slots = self._slots
        entries: dict[str, ManifestEntry] = {}

        async def one(instance: Instance) -> None:
            record = pending.files[instance.path]
            if record.entry is None:
                record.entry = await self._send(
                    study_key, instance, record, slots, policy, resumed=instance.path in resumed
                )
                journal.save(soon=True)
            entries[instance.path] = record.entry
            self._update(
                files_uploaded=self._progress.files_uploaded + 1,
                bytes_uploaded=self._progress.bytes_uploaded + instance.size,
            )

        # Instances start at most ``jobs`` at a time; their parts share the same slots. A file
        # of several parts is sent one at a time (its parts go in parallel): two of them at
        # once would only hold two part buffers more, not send faster.
        starter = asyncio.Semaphore(max(1, options.jobs))

        async def gated(instance: Instance) -> None:
            if ciphertext_size(instance.size) > PART_BYTES:
                async with self._large, starter:
                    await one(instance)
            else:
                async with starter:
                    await one(instance)

        async def batch(members: list[Instance]) -> None:
            # Small files travel many to a request: per-request costs, not bytes, bound the
            # rate of a folder of CT slices.
            async with starter:
                # Sealed before a request slot is taken, so sealing overlaps with sending;
                # the starter bounds how many sealed batches wait.
                sealed = await _offload(
                    lambda: [_seal_whole(study_key, m, pending.files[m.path]) for m in members]
                )
                blobs = [(entry.file_id.hex(), data) for data, entry in sealed]
                async with slots:
                    await retrying(policy, lambda: self.api.put_blobs(blobs))
            for member, (_, entry) in zip(members, sealed, strict=True):
                pending.files[member.path].entry = entry
                entries[member.path] = entry
            journal.save(soon=True)
            self._update(
                files_uploaded=self._progress.files_uploaded + len(members),
                bytes_uploaded=self._progress.bytes_uploaded + sum(m.size for m in members),
            )

        batchable = [
            instance
            for instance in todo
            if pending.files[instance.path].entry is None
            and instance.path not in resumed
            and ciphertext_size(instance.size) <= BATCH_ITEM_BYTES
        ]
        batched = {instance.path for instance in batchable}
        alone = [instance for instance in todo if instance.path not in batched]
        try:
            async with asyncio.TaskGroup() as group:
                for members in _batches(batchable):
                    group.create_task(batch(members))
                for instance in alone:
                    group.create_task(gated(instance))
        except ExceptionGroup as errors:
            raise first_error(errors) from None
        return [entries[instance.path] for instance in todo]

    async def _send(
        self,
        study_key: StudyKey,
        instance: Instance,
        record: JournalFile,
        slots: asyncio.Semaphore,
        policy: RetryPolicy,
        *,
        resumed: bool = False,
    ) -> ManifestEntry:
        sealed = SealedInstance(study_key, instance, file_id=record.file_id)
        blob_id = record.file_id.hex()
        size = ciphertext_size(record.size)
        pieces = sealed.chunks()
        carry = bytearray()
        if resumed:
            # An earlier run may have finished this file after its last journal write: ask,
            # and if the server holds it, only re-seal locally for the manifest entry.
            known = await retrying(policy, lambda: self.api.create_blob(blob_id, size))
            if known.complete:
                await _offload(lambda: _exhaust(pieces))
                return sealed.entry
        if size <= PART_BYTES:
            async with slots:
                data = await _offload(lambda: _take(pieces, PART_BYTES, carry))
                _drain(pieces)
                await retrying(policy, lambda: self.api.put_blob(blob_id, data))
            return sealed.entry
        status = await retrying(policy, lambda: self.api.create_blob(blob_id, size))
        received = set(status.received)
        number = 0
        try:
            async with asyncio.TaskGroup() as group:
                # Sealing the next part overlaps with sending the previous ones. A slot is
                # taken before a part is sealed, so sealed parts in memory never exceed the
                # number of requests in flight.
                while True:
                    await slots.acquire()
                    part = await _offload(lambda: _take(pieces, status.part_size, carry))
                    if not part or number in received:
                        slots.release()
                        if not part:
                            break
                    else:
                        group.create_task(self._put_part(blob_id, number, part, slots, policy))
                    number += 1
        except ExceptionGroup as errors:
            raise first_error(errors) from None
        await retrying(policy, lambda: self.api.complete_blob(blob_id))
        return sealed.entry

    async def _put_part(
        self,
        blob_id: str,
        number: int,
        part: bytes,
        slots: asyncio.Semaphore,
        policy: RetryPolicy,
    ) -> None:
        try:
            await retrying(policy, lambda: self.api.put_part(blob_id, number, part))
        finally:
            slots.release()

    async def _verify(
        self, seal: StudySeal, version: int, todo: list[Instance], policy: RetryPolicy
    ) -> None:
        # Imported here: verification reads back through the download path.
        from securepacs.client.download import Downloader

        downloader = Downloader(self.api, self.keys, policy=policy)
        wanted = {instance.sop_instance_uid: instance for instance in todo}
        async for entry, digest in downloader.digests(seal.study_id.hex(), version):
            instance = wanted.get(entry.instance_uid)
            if instance is not None and digest != _file_digest(instance.path):
                raise UploadError(
                    f"Verification failed for {instance.path}: what the server holds does not "
                    "decrypt to the file. Delete the study and upload it again."
                )


def _new_instances(
    study_key: StudyKey, scan: StudyScan, stored: tuple[ManifestEntry, ...]
) -> list[Instance]:
    """The scanned files the study does not hold yet.

    Files are compared by content, not only by SOP Instance UID: the same image in two transfer
    syntaxes often keeps its UID, and both files must round-trip. A stored entry is re-sealed
    under its own file id; the same plaintext gives the same ciphertext hash.
    """
    by_uid: dict[str, list[ManifestEntry]] = {}
    for entry in stored:
        by_uid.setdefault(entry.instance_uid, []).append(entry)
    kept: dict[str, list[Instance]] = {}
    todo: list[Instance] = []
    for members in scan.series.values():
        for instance in members:
            uid = instance.sop_instance_uid
            if any(_holds(study_key, entry, instance) for entry in by_uid.get(uid, ())):
                continue
            if any(_same_bytes(other, instance) for other in kept.get(uid, ())):
                continue
            kept.setdefault(uid, []).append(instance)
            todo.append(instance)
    return todo


def _holds(study_key: StudyKey, entry: ManifestEntry, instance: Instance) -> bool:
    if entry.plaintext_size != instance.size:
        return False
    digest = hashlib.blake2b(digest_size=32)
    for piece in SealedInstance(study_key, instance, file_id=entry.file_id).chunks():
        digest.update(piece)
    return digest.digest() == entry.ciphertext_hash


def _same_bytes(one: Instance, other: Instance) -> bool:
    return one.size == other.size and _file_digest(one.path) == _file_digest(other.path)


def scan_bytes(scan: StudyScan) -> int:
    """Plaintext bytes of a scanned study."""
    return sum(instance.size for members in scan.series.values() for instance in members)


def _merge(stored: StudyAttributes, scanned: StudyAttributes) -> StudyAttributes:
    fields = {
        name: getattr(stored, name) or getattr(scanned, name)
        for name in StudyAttributes.__struct_fields__
        if name != "modalities"
    }
    modalities = tuple(sorted(set(stored.modalities) | set(scanned.modalities)))
    return StudyAttributes(**fields, modalities=modalities)


def _stat(path: str) -> tuple[int, int]:
    from pathlib import Path

    stat = Path(path).stat()
    return stat.st_size, stat.st_mtime_ns


def _batches(instances: list[Instance]) -> Iterator[list[Instance]]:
    """Consecutive groups whose sealed sizes fit one batch request."""
    members: list[Instance] = []
    size = 0
    for instance in instances:
        sealed = ciphertext_size(instance.size)
        if members and (size + sealed > PART_BYTES or len(members) == BATCH_ITEMS):
            yield members
            members, size = [], 0
        members.append(instance)
        size += sealed
    if members:
        yield members


def _seal_whole(
    study_key: StudyKey, instance: Instance, record: JournalFile
) -> tuple[bytes, ManifestEntry]:
    sealed = SealedInstance(study_key, instance, file_id=record.file_id)
    data = b"".join(sealed.chunks())
    return data, sealed.entry


def _exhaust(pieces: Iterator[bytes]) -> None:
    for _ in pieces:
        pass


def _drain(pieces: Iterator[bytes]) -> None:
    # The entry (size and hash) is complete only once the sealer has run to its end.
    for _ in pieces:
        raise UploadError("A file grew while it was being read. Upload it again.")


def _file_digest(path: str) -> bytes:
    digest = hashlib.blake2b(digest_size=32)
    with open(path, "rb") as handle:  # noqa: PTH123 -- a path string
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.digest()


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii")

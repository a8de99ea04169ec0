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
import contextlib
import functools
import hashlib
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, TypeAlias, TypeVar

import msgspec

from securepacs.client.api import ApiError, b64
from securepacs.client.coalescing import Batches, Coalesced, commits, lookups
from securepacs.client.download import Downloader, IntegrityError
from securepacs.client.journal import Journal, JournalFile, JournalStudy
from securepacs.client.retry import RetryPolicy, retrying
from securepacs.client.scanned import StudyAttributes, merge_attributes
from securepacs.client.sealing import SealedInstance, StudyMetadata, StudySeal, decode_metadata
from securepacs.client.tasks import first_error
from securepacs.client.trust import trusted_signers
from securepacs.crypto import (
    PERMISSION_EDIT,
    ciphertext_size,
    new_file_id,
    open_manifest,
    open_metadata,
    study_uid_tag,
    unwrap_study_key,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator
    from pathlib import Path

    from securepacs.client.api import ApiClient, CommitOutcomeView, StudySummaryView
    from securepacs.client.scanned import Instance, ScanProgress, ScanReport
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
# The server's part size (server/domain/studies/services.py PART_SIZE); a blob that fits in
# one part goes in a single request.
PART_BYTES: Final = 8 * 1024 * 1024
_SCAN_PROGRESS_INTERVAL: Final = 0.05
T = TypeVar("T")
Phase = Literal["scanning", "uploading", "committing", "verifying", "finished"]


class Scanner(Protocol):
    """What scans the folder: ``dicom.scan_folder`` in this process, or the CLI's child."""

    def __call__(
        self,
        folder: Path,
        on_progress: Callable[[ScanProgress], None] | None = None,
        *,
        on_instance: Callable[[Instance, StudyAttributes], None] | None = None,
    ) -> ScanReport: ...


# SHA-256 of one blob or part, awaited (WebCrypto in the browser).
Digest: TypeAlias = "Callable[[bytes], Awaitable[bytes]]"
# A whole file's content by its path, awaited (the chosen File objects in the browser).
Reader: TypeAlias = "Callable[[str], Awaitable[bytes]]"


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
    # A study shared with me with Edit or Admin (its id): the folder's files are added to it
    # instead of to studies of my own (protocol.md §15.4). The folder must hold that study only.
    into: str = ""


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

    # Made for each folder inside its task group (client/coalescing.py).
    _batches: Batches[_Member, ManifestEntry]
    _lookups: Coalesced[bytes, None, StudySummaryView | None]
    _commits: Coalesced[str, dict[str, Any], CommitOutcomeView]

    def __init__(
        self,
        api: ApiClient,
        keys: AccountKeys,
        *,
        journal_dir: Path | None = None,
        scanner: Scanner,
        on_progress: Callable[[UploadProgress], None] | None = None,
        digest: Digest | None = None,
        reader: Reader | None = None,
    ) -> None:
        self.api = api
        self.scanner = scanner
        # SHA-256 of whole blobs and parts: on this thread by default (the sealing threads on
        # CPython); the browser worker passes WebCrypto's, which runs off its only thread.
        self.digest = digest
        # Whole files sent in one request: read on the sealing thread by default; the browser
        # worker passes an asynchronous read of the chosen File objects, which overlaps with
        # the requests in flight.
        self.reader = reader
        self.keys = keys
        self.journal_dir = journal_dir
        self.on_progress = on_progress
        self._progress = UploadProgress(phase="scanning")
        self._slots = asyncio.Semaphore(4)
        self._starter = asyncio.Semaphore(4)
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
        """Scan ``folder`` and upload every study in it, sending files as the scan finds them.

        Raises:
            UploadError: the upload cannot go on (the message says why and what to do).
            ApiError: the server refused something that retrying cannot cure.
        """
        self._started = time.monotonic()
        if not folder.is_dir():
            raise UploadError(f"{folder} is not a folder. Choose the folder that holds the study.")
        journal = Journal.for_folder(self.journal_dir, folder)
        policy = RetryPolicy(attempts=options.retry_attempts, on_retry=self._retry_message)
        # Requests in flight and sealed data waiting are bounded across all studies.
        self._slots = asyncio.Semaphore(max(1, options.jobs))
        self._starter = asyncio.Semaphore(max(1, options.jobs))
        self._large = asyncio.Semaphore(1)
        loop = asyncio.get_running_loop()
        arrivals: asyncio.Queue[Instance | None] = asyncio.Queue()

        def found(instance: Instance, _: StudyAttributes) -> None:
            loop.call_soon_threadsafe(arrivals.put_nowait, instance)

        last_progress = 0.0

        def progress(scan: ScanProgress) -> None:
            # At most 20 a second: each wakes the event loop. The last counts come with the
            # report.
            nonlocal last_progress
            now = time.monotonic()
            if now - last_progress >= _SCAN_PROGRESS_INTERVAL:
                last_progress = now
                loop.call_soon_threadsafe(self._scanned, scan)

        def scan() -> ScanReport:
            try:
                return self.scanner(folder, progress, on_instance=found)
            finally:
                loop.call_soon_threadsafe(arrivals.put_nowait, None)

        runs: dict[str, _StudyRun] = {}
        try:
            async with asyncio.TaskGroup() as group:
                # File ids reach the journal before anything is sent under them: a rerun must
                # reuse them (and never seal other bytes under them).
                self._batches = Batches(
                    group,
                    functools.partial(self._send_batch, policy=policy),
                    max_items=BATCH_ITEMS,
                    max_bytes=PART_BYTES,
                    before_send=journal.save,
                )
                self._lookups = lookups(self.api, group, policy)
                self._commits = commits(self.api, group, policy)
                # Not on a sealing thread: the scan runs for as long as the upload does.
                scanning = group.create_task(
                    asyncio.to_thread(scan) if _threaded() else _offload(scan)
                )
                while (instance := await arrivals.get()) is not None:
                    run = runs.get(instance.study_instance_uid)
                    if run is None:
                        run = _StudyRun(self, instance.study_instance_uid, journal, options, policy)
                        runs[instance.study_instance_uid] = run
                        group.create_task(run.run())
                    self._update(
                        phase="uploading",
                        files_total=self._progress.files_total + 1,
                        bytes_total=self._progress.bytes_total + instance.size,
                    )
                    run.instances.put_nowait(instance)
                report = await scanning
                self._scanned(report.progress())
                for uid, run in runs.items():
                    run.close(report.studies[uid].attributes)
        except ExceptionGroup as errors:
            raise first_error(errors) from None
        if not report.studies:
            raise UploadError(
                f"No DICOM files were found in {folder} ({report.found} files looked at, "
                f"{len(report.unsupported)} unsupported). Choose the folder that holds the study."
            )
        outcomes = [runs[uid].outcome for uid in sorted(runs)]
        self._update(force=True, phase="finished", message="Upload finished!")
        return UploadResult(
            studies=outcomes,
            unsupported=report.unsupported,
            broken=report.broken,
            progress=self._progress,
        )

    async def _send_batch(
        self, members: list[_Member], *, policy: RetryPolicy
    ) -> list[ManifestEntry]:
        # Small files travel many to a request, whichever study they belong to: per-request
        # costs, not bytes, bound the rate of a folder of CT slices or of small studies.
        # Sealed before a request slot is taken, so sealing overlaps with sending; the
        # starter bounds how many sealed batches wait.
        async with self._starter:
            sealed = await self._whole(members)
            # The manifest's ciphertext hash is the SHA-256 the server checks each blob against.
            blobs = [(entry.file_id.hex(), entry.ciphertext_hash, data) for data, entry in sealed]
            async with self._slots:
                await retrying(policy, lambda: self.api.put_blobs(blobs))
        self._update(
            files_uploaded=self._progress.files_uploaded + len(members),
            bytes_uploaded=self._progress.bytes_uploaded + sum(m[1].size for m in members),
        )
        return [entry for _, entry in sealed]

    async def _whole(self, members: list[_Member]) -> list[tuple[bytes, ManifestEntry]]:
        """Files small enough for one request: read, sealed and hashed whole."""
        hashed = self.digest is None
        plains = await self._read([instance for _, instance, _ in members])
        sealed = await _offload(
            lambda: [
                _seal_whole(*member, hashed=hashed, plain=plain)
                for member, plain in zip(members, plains, strict=True)
            ]
        )
        digests = await asyncio.gather(
            *(self._digest(data) if known is None else _known(known) for data, _, known in sealed)
        )
        return [
            (data, instance.entry_for(digest))
            for (data, instance, _), digest in zip(sealed, digests, strict=True)
        ]

    async def _read(self, instances: list[Instance]) -> list[bytes | None]:
        if self.reader is None:
            return [None] * len(instances)
        reader = self.reader
        return list(await asyncio.gather(*(reader(instance.path) for instance in instances)))

    async def _digest(self, data: bytes) -> bytes:
        if self.digest is None:
            return await _offload(lambda: hashlib.sha256(data).digest())
        return await self.digest(data)

    async def _send_alone(
        self,
        study_key: StudyKey,
        instance: Instance,
        record: JournalFile,
        policy: RetryPolicy,
        *,
        resumed: bool,
    ) -> ManifestEntry:
        # A file of several parts is sent one at a time (its parts go in parallel): two of
        # them at once would only hold two part buffers more, not send faster.
        large = ciphertext_size(instance.size) > PART_BYTES
        async with self._large if large else contextlib.nullcontext(), self._starter:
            entry = await self._send(
                study_key, instance, record, self._slots, policy, resumed=resumed
            )
        self._update(
            files_uploaded=self._progress.files_uploaded + 1,
            bytes_uploaded=self._progress.bytes_uploaded + instance.size,
        )
        return entry

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
        blob_id = record.file_id.hex()
        size = ciphertext_size(record.size)
        if resumed:
            # An earlier run may have finished this file after its last journal write: ask,
            # and if the server holds it, only re-seal locally for the manifest entry.
            known = await retrying(policy, lambda: self.api.create_blob(blob_id, size))
            if known.complete:
                held = SealedInstance(study_key, instance, file_id=record.file_id)
                await _offload(lambda: _exhaust(held.chunks()))
                return held.entry
        if size <= PART_BYTES:
            async with slots:
                [(data, entry)] = await self._whole([(study_key, instance, record)])
                digest = entry.ciphertext_hash
                await retrying(policy, lambda: self.api.put_blob(blob_id, data, sha256=digest))
            return entry
        sealed = SealedInstance(study_key, instance, file_id=record.file_id)
        pieces = sealed.chunks()
        carry = bytearray()
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
            digest = await self._digest(part)
            await retrying(policy, lambda: self.api.put_part(blob_id, number, part, sha256=digest))
        finally:
            slots.release()

    async def _verify(
        self, seal: StudySeal, version: int, todo: list[Instance], policy: RetryPolicy
    ) -> None:
        downloader = Downloader(self.api, self.keys, policy=policy)
        wanted = {instance.sop_instance_uid: instance for instance in todo}
        async for entry, digest in downloader.digests(seal.study_id.hex(), version):
            instance = wanted.get(entry.instance_uid)
            if instance is not None and digest != _file_digest(instance.path):
                raise UploadError(
                    f"Verification failed for {instance.path}: what the server holds does not "
                    "decrypt to the file. Delete the study and upload it again."
                )


class _StudyRun:
    """One study of the folder: decide its key, send its new files as they arrive, commit."""

    def __init__(
        self,
        uploader: Uploader,
        uid: str,
        journal: Journal,
        options: UploadOptions,
        policy: RetryPolicy,
    ) -> None:
        self.uploader = uploader
        self.uid = uid
        self.journal = journal
        self.options = options
        self.policy = policy
        self.instances: asyncio.Queue[Instance | None] = asyncio.Queue()
        self.attributes: StudyAttributes | None = None
        self._stored_attributes: StudyAttributes | None = None
        # Adding to someone else's study: its summary (the owner's key wrap and UID tag, which
        # stay as they are) and its metadata as stored (its sender and message stay too).
        self._target: StudySummaryView | None = None
        self._target_metadata: StudyMetadata | None = None
        self.outcome: StudyOutcome

    def close(self, attributes: StudyAttributes) -> None:
        """The scan is over: these are the study's merged attributes; no more files come."""
        self.attributes = attributes
        self.instances.put_nowait(None)

    async def _prepare_into(self) -> tuple[StudySeal, tuple[ManifestEntry, ...], int]:
        """Add to a study shared with me: its key from my grant, its manifest verified."""
        api, keys, policy = self.uploader.api, self.uploader.keys, self.policy
        downloader = Downloader(api, keys, policy=policy)
        try:
            opened = await downloader.open(self.options.into)
        except IntegrityError as error:
            raise UploadError(str(error)) from None
        if opened.row.permission < PERMISSION_EDIT:
            raise UploadError(
                "Your access to this study does not include adding files to it. Ask its owner "
                "for Edit permission."
            )
        if opened.row.attributes.study_instance_uid != self.uid:
            raise UploadError(
                "The folder holds files of another study than the one you chose to add to. "
                "Choose a folder with files of that study only, or upload it to your own studies."
            )
        summary = opened.detail.summary
        study_id = bytes.fromhex(summary.study_id)
        self._target = summary
        self._target_metadata = decode_metadata(
            open_metadata(opened.study_key, study_id, summary.metadata)
        )
        self._stored_attributes = self._target_metadata.attributes
        seal = StudySeal(keys, study_key=opened.study_key, study_id=study_id)
        return seal, opened.manifest.entries, opened.manifest.manifest_version

    async def _prepare(self, tag: bytes) -> tuple[StudySeal, tuple[ManifestEntry, ...], int]:
        if self.options.into:
            return await self._prepare_into()
        api, keys, policy = self.uploader.api, self.uploader.keys, self.policy
        summary = await self.uploader._lookups.submit(tag, None)
        pending = self.journal.study(tag)
        if summary is not None:
            study_id = bytes.fromhex(summary.study_id)
            study_key = unwrap_study_key(keys.account_key, study_id, summary.wrapped_key)
            seal = StudySeal(keys, study_key=study_key, study_id=study_id)
            detail = await retrying(policy, lambda: api.study(summary.study_id))
            # Whoever I gave Edit may have signed the newest manifest (a changed description).
            trusted = trusted_signers({keys.public.ed25519}, detail.endorsements, study_id)
            manifest = open_manifest(study_key, study_id, detail.manifest, trusted)
            self._stored_attributes = seal.open_metadata(summary.metadata).attributes
            return seal, manifest.entries, manifest.manifest_version
        if pending is not None:
            study_key = unwrap_study_key(keys.account_key, pending.study_id, pending.wrapped_key)
            return StudySeal(keys, study_key=study_key, study_id=pending.study_id), (), 0
        return StudySeal(keys), (), 0

    async def run(self) -> None:
        """Consume the study's files until the scan closes it, then commit."""
        uploader, journal, policy = self.uploader, self.journal, self.policy
        tag = study_uid_tag(uploader.keys.account_key, self.uid)
        seal, base_entries, base_version = await self._prepare(tag)
        pending = journal.study(tag)
        begun = pending is not None and pending.study_id == seal.study_id
        if pending is None or not begun:
            # A journal entry for another study id was sealed for a study that lost a race;
            # its blobs are swept by the server. The new entry is written with the first file.
            pending = JournalStudy(study_id=seal.study_id, wrapped_key=seal.wrapped_key())
        by_uid: dict[str, list[ManifestEntry]] = {}
        for entry in base_entries:
            by_uid.setdefault(entry.instance_uid, []).append(entry)
        kept: dict[str, list[Instance]] = {}
        todo: list[Instance] = []
        skipped = 0
        sends: list[asyncio.Future[ManifestEntry]] = []
        key = seal.study_key
        study: JournalStudy = pending

        try:
            while (instance := await self.instances.get()) is not None:
                uid = instance.sop_instance_uid
                held = functools.partial(
                    _already_held, key, by_uid.get(uid, []), kept.get(uid, []), instance
                )
                if (uid in by_uid or uid in kept) and await _offload(held):
                    skipped += 1
                    uploader._update(
                        files_already_stored=uploader._progress.files_already_stored + 1,
                        bytes_total=uploader._progress.bytes_total - instance.size,
                    )
                    continue
                kept.setdefault(uid, []).append(instance)
                todo.append(instance)
                if not begun:
                    journal.begin(tag, study)
                    begun = True
                size, mtime_ns = _stat(instance.path)
                record = study.files.get(instance.path)
                resumed = record is not None and (record.size, record.mtime_ns) == (size, mtime_ns)
                if record is None or not resumed:
                    record = JournalFile(size=size, mtime_ns=mtime_ns, file_id=new_file_id())
                    study.files[instance.path] = record
                if record.entry is not None:
                    continue  # sent by an earlier run; its entry is in the journal
                sealed_size = ciphertext_size(instance.size)
                if resumed or sealed_size > BATCH_ITEM_BYTES:
                    journal.save()
                    sends.append(
                        asyncio.ensure_future(
                            uploader._send_alone(key, instance, record, policy, resumed=resumed)
                        )
                    )
                    continue
                sends.append(uploader._batches.add((key, instance, record), sealed_size))
            uploader._batches.flush()
            sent = await asyncio.gather(*sends)
        except BaseException:
            for task in sends:
                task.cancel()
            raise
        if self.attributes is None:
            raise RuntimeError("a study run ended before the scan closed it")
        attributes = self.attributes
        if self._stored_attributes is not None:
            attributes = merge_attributes(self._stored_attributes, attributes)
        if not todo:
            if journal.study(tag) is not None:
                # An earlier run committed it but was stopped before it could say so.
                journal.finish(tag)
            self.outcome = StudyOutcome(
                study_id=seal.study_id.hex(),
                attributes=attributes,
                uploaded=0,
                already_stored=skipped,
                manifest_version=base_version,
                appended=False,
            )
            return
        by_file = {entry.file_id: entry for entry in sent}
        entries: list[ManifestEntry] = []
        for instance in todo:
            record = study.files[instance.path]
            record.entry = record.entry or by_file[record.file_id]
            entries.append(record.entry)
        # Soon, not now: without the entries a rerun re-seals these files locally to learn
        # them, but sends nothing again.
        journal.save(soon=True)
        await self._commit(seal, tag, attributes, base_entries, base_version, entries, todo)
        self.outcome = StudyOutcome(
            study_id=seal.study_id.hex(),
            attributes=attributes,
            uploaded=len(todo),
            already_stored=skipped,
            manifest_version=base_version + 1,
            appended=base_version > 0,
        )

    async def _commit(
        self,
        seal: StudySeal,
        tag: bytes,
        attributes: StudyAttributes,
        base_entries: tuple[ManifestEntry, ...],
        base_version: int,
        entries: list[ManifestEntry],
        todo: list[Instance],
    ) -> None:
        uploader, options, policy, journal = self.uploader, self.options, self.policy, self.journal
        version = base_version + 1
        all_entries = [*base_entries, *entries]
        uploader._update(force=True, phase="committing")
        stored = self._target_metadata
        metadata = seal.metadata(
            attributes,
            sender_email=options.sender_email if stored is None else stored.sender_email,
            message=options.message if stored is None else stored.message,
            instance_count=len(all_entries),
            manifest_version=version,
        )
        target = self._target
        body = {
            "uid_tag": b64(tag if target is None else target.uid_tag),
            "wrapped_key": b64(seal.wrapped_key() if target is None else target.wrapped_key),
            "metadata": b64(metadata),
            "manifest": b64(seal.manifest(version, all_entries)),
            "manifest_version": version,
            "blob_ids": [entry.file_id.hex() for entry in all_entries],
        }
        # Studies that finish together (a folder of many small ones) share a request.
        try:
            outcome = await uploader._commits.submit(seal.study_id.hex(), body)
        except ApiError as error:
            code: str | None = error.code
            detail: str | None = error.detail
        else:
            code, detail = outcome.code, outcome.detail
        if code is not None:
            pending = journal.study(tag)
            if code == "upload_incomplete" and pending is not None:
                # The server lost files the journal believed sent; send them again next run.
                for instance in todo:
                    pending.files[instance.path].entry = None
                journal.save()
            raise UploadError(
                f"The study could not be saved: {detail} Running the same upload again "
                "resumes where it stopped."
            )
        journal.finish(tag)
        if options.verify:
            uploader._update(force=True, phase="verifying")
            await uploader._verify(seal, version, todo, policy)
        uploader._update(force=True, phase="uploading")


def _already_held(
    study_key: StudyKey,
    stored: list[ManifestEntry],
    kept: list[Instance],
    instance: Instance,
) -> bool:
    """Whether the study holds this file already, or this upload is sending the same bytes.

    Files are compared by content, not only by SOP Instance UID: the same image in two
    transfer syntaxes often keeps its UID, and both files must round-trip. A stored entry is
    re-sealed under its own file id; the same plaintext gives the same ciphertext hash.
    """
    return any(_holds(study_key, entry, instance) for entry in stored) or any(
        _same_bytes(other, instance) for other in kept
    )


def _holds(study_key: StudyKey, entry: ManifestEntry, instance: Instance) -> bool:
    if entry.plaintext_size != instance.size:
        return False
    resealed = SealedInstance(study_key, instance, file_id=entry.file_id)
    _exhaust(resealed.chunks())
    return resealed.entry.ciphertext_hash == entry.ciphertext_hash


def _same_bytes(one: Instance, other: Instance) -> bool:
    return one.size == other.size and _file_digest(one.path) == _file_digest(other.path)


def _stat(path: str) -> tuple[int, int]:
    stat = os.stat(path)  # noqa: PTH116 -- a path string
    return stat.st_size, stat.st_mtime_ns


_Member = tuple["StudyKey", "Instance", JournalFile]


def _seal_whole(
    study_key: StudyKey,
    instance: Instance,
    record: JournalFile,
    *,
    hashed: bool,
    plain: bytes | None = None,
) -> tuple[bytes, SealedInstance, bytes | None]:
    """A file sealed whole; with ``hashed``, its SHA-256 too (here, on a sealing thread)."""
    sealed = SealedInstance(study_key, instance, file_id=record.file_id)
    data = sealed.seal_whole(plain)
    if sealed.plaintext_size != instance.size:
        # The scan sized the upload (one request or parts, the journal) by the old length.
        raise UploadError(f"{instance.path} changed while it was being read. Upload it again.")
    return data, sealed, hashlib.sha256(data).digest() if hashed else None


async def _known(digest: bytes) -> bytes:
    return digest


def _exhaust(pieces: Iterator[bytes]) -> None:
    for _ in pieces:
        pass


def _file_digest(path: str) -> bytes:
    with open(path, "rb") as handle:  # noqa: PTH123 -- a path string
        return hashlib.file_digest(handle, "sha256").digest()

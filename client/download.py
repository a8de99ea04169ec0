"""Downloading a study: verify the signed manifest, fetch each blob by range, open every chunk.

Nothing the server says is taken on trust. The manifest must be signed by the owner; its version
must agree with the metadata box and must not be older than one this client has seen; each
blob must open under the study key and hash to what the manifest says. A failure names the study
and the instance, and nothing of that instance is written: files go to a temporary name first
and are renamed only once the instance verified completely.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import zipfile
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import msgspec

from securepacs.client.api import ApiError
from securepacs.client.library import granter_of, open_row, row_of, short_id, study_key_of
from securepacs.client.retry import RetryPolicy, retrying
from securepacs.client.tasks import first_error
from securepacs.client.trust import (
    FingerprintChanged,
    FingerprintMemory,
    KeysRefused,
    trusted_signers,
    verified_keys,
)
from securepacs.crypto import AuthenticationFailed, CryptoError, open_instance, open_manifest
from securepacs.crypto.stream import CHUNK_LOG2_MAX, CHUNK_LOG2_MIN, HEADER_BYTES, TAG_BYTES

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator
    from pathlib import Path

    from securepacs.client.api import ApiClient, StudyDetailView
    from securepacs.client.library import StudyRow
    from securepacs.crypto import AccountKeys, Manifest, ManifestEntry, StudyKey

__all__ = (
    "DownloadProgress",
    "Downloader",
    "IntegrityError",
    "LinkKeys",
    "OpenedStudy",
    "VersionMemory",
)

RANGE_BYTES: Final = 8 * 1024 * 1024


class IntegrityError(Exception):
    """What the server returned is not what the owner stored; the message names what failed."""


class DownloadProgress(msgspec.Struct, frozen=True, kw_only=True):
    """Files and bytes written so far."""

    files_total: int
    files_done: int
    bytes_total: int
    bytes_done: int


class VersionMemory:
    """The newest manifest version seen per study, so a rollback by the server is noticed."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._seen: dict[str, int] = {}
        if path is not None and path.is_file():
            with contextlib.suppress(ValueError):
                self._seen = {str(k): int(v) for k, v in json.loads(path.read_text()).items()}

    def seen(self, study_id: str) -> int:
        """The newest version seen (0 for a study never opened here)."""
        return self._seen.get(study_id, 0)

    def remember(self, study_id: str, version: int) -> None:
        """Record ``version`` if it is newer."""
        if version <= self.seen(study_id):
            return
        self._seen[study_id] = version
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            temporary = self.path.with_suffix(".tmp")
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                json.dump(self._seen, handle)
            temporary.replace(self.path)


@dataclass(frozen=True, kw_only=True)
class OpenedStudy:
    """A study whose key, metadata and manifest opened and agree with each other."""

    row: StudyRow
    study_key: StudyKey
    manifest: Manifest
    detail: StudyDetailView

    @property
    def label(self) -> str:
        """How errors name the study: its short id and what the person knows it by."""
        attributes = self.row.attributes
        known = ", ".join(v for v in (attributes.patient_name, attributes.study_date) if v)
        return f"study {short_id(self.row.study_id)}" + (f" ({known})" if known else "")


def instance_names(entries: tuple[ManifestEntry, ...]) -> dict[bytes, str]:
    """Where each instance goes in the output folder or zip: ``SERIES/INSTANCE.dcm``.

    Two files may carry the same instance UID (one image in two transfer syntaxes); the second
    and later get the start of their file id appended so that none overwrites another.
    """
    names: dict[bytes, str] = {}
    taken: set[str] = set()
    for entry in entries:
        name = f"{entry.series_uid}/{entry.instance_uid}.dcm"
        if name in taken:
            name = f"{entry.series_uid}/{entry.instance_uid}-{entry.file_id.hex()[:8]}.dcm"
        taken.add(name)
        names[entry.file_id] = name
    return names


@dataclass(frozen=True, kw_only=True)
class LinkKeys:
    """What an anonymous link opened to: its study's key and the key of who made the link."""

    study_id: str
    study_key: StudyKey
    creator: bytes


class Downloader:
    """Opens and downloads studies of one signed-in account, or the study of one link.

    ``download``: the reads are a download (zip or folder), which a share or link needs the
    Download permission for; a viewer reads without it.
    """

    def __init__(
        self,
        api: ApiClient,
        keys: AccountKeys | None,
        *,
        memory: VersionMemory | None = None,
        policy: RetryPolicy | None = None,
        jobs: int = 4,
        link: LinkKeys | None = None,
        fingerprints: FingerprintMemory | None = None,
        download: bool = False,
    ) -> None:
        if (keys is None) == (link is None):
            raise ValueError("a downloader reads with account keys or with a link, not both")
        self.api = api
        self.keys = keys
        self.link = link
        self.memory = memory or VersionMemory(None)
        self.fingerprints = fingerprints or FingerprintMemory()
        self.policy = policy or RetryPolicy()
        self.jobs = jobs
        self.download = download

    def _opened_keys(self, detail: StudyDetailView) -> tuple[StudyRow, StudyKey, set[bytes]]:
        """The row, the study key, and the signers this reader vouches for itself (§15.4)."""
        summary = detail.summary
        if self.link is not None:
            if summary.study_id != self.link.study_id:
                raise AuthenticationFailed
            row = row_of(summary, self.link.study_key, sender="", message="")
            anchors = {self.link.creator}
            owner_keys = verified_keys(detail.owner_keys)
            if owner_keys is not None:
                anchors.add(owner_keys.ed25519)
            return row, self.link.study_key, anchors
        assert self.keys is not None  # noqa: S101 -- checked in __init__
        row = open_row(self.keys, summary)
        anchors = {self.keys.public.ed25519}
        granter = granter_of(self.keys, summary)
        if granter is not None:
            # Whoever shared it with me, and its owner, as far as their fingerprints check.
            anchors.add(granter)
            self.fingerprints.identify(summary.granter_email or "", summary.granter_keys or b"")
            owner = self.fingerprints.identify(summary.owner_email, detail.owner_keys)
            anchors.add(owner.keys.ed25519)
        return row, study_key_of(self.keys, summary), anchors

    async def open(self, study_id: str) -> OpenedStudy:
        """Fetch the study and check its key, metadata and manifest.

        Raises:
            IntegrityError: something does not open, or the parts disagree (a rollback).
        """
        detail = await retrying(self.policy, lambda: self.api.study(study_id))
        label = f"study {short_id(study_id)}"
        try:
            row, study_key, anchors = self._opened_keys(detail)
        except (FingerprintChanged, KeysRefused) as error:
            raise IntegrityError(str(error)) from None
        except (CryptoError, msgspec.DecodeError, msgspec.ValidationError):
            raise IntegrityError(
                f"The key or details of {label} do not open with your keys: they were changed "
                "on the server. Nothing was downloaded."
            ) from None
        try:
            manifest = open_manifest(
                study_key,
                bytes.fromhex(study_id),
                detail.manifest,
                trusted_signers(anchors, detail.endorsements, bytes.fromhex(study_id)),
            )
        except CryptoError:
            raise IntegrityError(
                f"The list of files of {label} is not signed by anyone you or the person who "
                "shared it trust: it was changed on the server. Nothing was downloaded."
            ) from None
        opened = OpenedStudy(row=row, study_key=study_key, manifest=manifest, detail=detail)
        metadata_version = row.metadata_version
        seen = self.memory.seen(study_id)
        if manifest.manifest_version != metadata_version or manifest.manifest_version < seen:
            newest = max(metadata_version, seen)
            raise IntegrityError(
                f"The server returned an old list of files for {opened.label}: version "
                f"{manifest.manifest_version}, but version {newest} exists. Files added since "
                "would be missing, so nothing was downloaded. Try again later; if it persists, "
                "the server is not serving your latest data."
            )
        missing = {entry.file_id.hex() for entry in manifest.entries} - set(detail.blob_ids)
        if missing:
            entry = next(e for e in manifest.entries if e.file_id.hex() in missing)
            raise IntegrityError(
                f"Instance {entry.instance_uid} of {opened.label} is missing on the server."
            )
        self.memory.remember(study_id, manifest.manifest_version)
        return opened

    async def plaintext(self, study: OpenedStudy, entry: ManifestEntry) -> AsyncIterator[bytes]:
        """The instance's bytes, each chunk verified; the last check runs at the end.

        Raises:
            IntegrityError: a chunk, the size or the hash differs from the signed manifest.
        """
        # open_instance pulls from a plain iterator; ranges are fetched ahead so that it never
        # finds the buffer empty before the end: it needs at most two sealed chunks to release
        # one chunk of plaintext.
        buffer: deque[bytes] = deque()
        fetched = 0
        total = entry.ciphertext_size
        need = 2 * ((1 << CHUNK_LOG2_MAX) + TAG_BYTES) + HEADER_BYTES
        state = {"buffered": 0}

        def source() -> Iterator[bytes]:
            while buffer:
                piece = buffer.popleft()
                state["buffered"] -= len(piece)
                yield piece
                while not buffer and fetched < total:
                    raise RuntimeError("download buffer ran dry")  # a bug, never a data error

        opener = open_instance(study.study_key, entry, source())

        def fail(reason: str) -> IntegrityError:
            return failed(study, entry, reason)

        while True:
            while fetched < total and state["buffered"] < need:
                end = min(total, fetched + RANGE_BYTES)
                start = fetched
                try:
                    data = await retrying(
                        self.policy,
                        lambda start=start, end=end: self.api.get_blob(  # type: ignore[misc]
                            entry.file_id.hex(), start, end, download=self.download
                        ),
                    )
                except ApiError as error:
                    if error.status in (404, 416):
                        raise fail("its data is missing or shorter than signed") from None
                    raise
                if len(data) != end - start:
                    raise fail("its data is shorter than signed")
                if start == 0 and len(data) >= HEADER_BYTES:
                    chunk_log2 = data[6]
                    if CHUNK_LOG2_MIN <= chunk_log2 <= CHUNK_LOG2_MAX:
                        need = 2 * ((1 << chunk_log2) + TAG_BYTES) + HEADER_BYTES
                buffer.append(data)
                state["buffered"] += len(data)
                fetched = end
            try:
                chunk = next(opener)
            except StopIteration:
                return
            except CryptoError as error:
                raise fail(type(error).__name__) from None
            yield chunk

    def opened(
        self,
        study: OpenedStudy,
        entry: ManifestEntry,
        ciphertext: bytes,
        sha256: bytes | None = None,
    ) -> Iterator[bytes]:
        """The plaintext of an instance whose whole ciphertext was read ahead, chunk by chunk.

        ``sha256``: the ciphertext's SHA-256 if the caller computed it (WebCrypto).

        Raises:
            IntegrityError: as :meth:`plaintext`.
        """
        if len(ciphertext) != entry.ciphertext_size:
            raise failed(study, entry, "its data is not the size signed")
        try:
            yield from open_instance(
                study.study_key, entry, iter((ciphertext,)), ciphertext_sha256=sha256
            )
        except CryptoError as error:
            raise failed(study, entry, type(error).__name__) from None

    async def to_folder(
        self,
        study_id: str,
        folder: Path,
        on_progress: Callable[[DownloadProgress], None] | None = None,
    ) -> OpenedStudy:
        """Write every instance as ``SERIES_UID/INSTANCE_UID.dcm`` under ``folder``."""
        study = await self.open(study_id)
        entries = study.manifest.entries
        names = instance_names(entries)
        progress = _Progress(entries, on_progress)
        slots = asyncio.Semaphore(self.jobs)

        async def one(entry: ManifestEntry) -> None:
            async with slots:
                target = folder / names[entry.file_id]
                target.parent.mkdir(parents=True, exist_ok=True)
                temporary = target.with_name(target.name + ".part")
                try:
                    with temporary.open("wb") as handle:
                        async for chunk in self.plaintext(study, entry):
                            handle.write(chunk)
                    temporary.replace(target)
                finally:
                    temporary.unlink(missing_ok=True)
                progress.done(entry)

        try:
            async with asyncio.TaskGroup() as group:
                for entry in entries:
                    group.create_task(one(entry))
        except ExceptionGroup as errors:
            raise first_error(errors) from None
        return study

    async def to_zip(
        self,
        study_id: str,
        zip_path: Path,
        on_progress: Callable[[DownloadProgress], None] | None = None,
    ) -> OpenedStudy:
        """Write the study as a zip streamed to disk (stored, not recompressed)."""
        study = await self.open(study_id)
        progress = _Progress(study.manifest.entries, on_progress)
        names = instance_names(study.manifest.entries)
        temporary = zip_path.with_name(zip_path.name + ".part")
        try:
            with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_STORED) as archive:
                for entry in study.manifest.entries:
                    with archive.open(names[entry.file_id], "w", force_zip64=True) as member:
                        async for chunk in self.plaintext(study, entry):
                            member.write(chunk)
                    progress.done(entry)
            temporary.replace(zip_path)
        finally:
            temporary.unlink(missing_ok=True)
        return study

    async def digests(
        self, study_id: str, version: int
    ) -> AsyncIterator[tuple[ManifestEntry, bytes]]:
        """SHA-256 of each instance's plaintext (verify-after-upload)."""
        study = await self.open(study_id)
        if study.manifest.manifest_version != version:
            raise IntegrityError(f"{study.label} changed while it was being verified.")
        for entry in study.manifest.entries:
            digest = hashlib.sha256()
            async for chunk in self.plaintext(study, entry):
                digest.update(chunk)
            yield entry, digest.digest()


def failed(study: OpenedStudy, entry: ManifestEntry, reason: str) -> IntegrityError:
    """The error for an instance that did not verify, naming it and what to do."""
    return IntegrityError(
        f"Instance {entry.instance_uid} of {study.label} failed verification: {reason}. "
        "Nothing was written for it. The copy on the server was changed or replaced; "
        "if it persists, contact the study's owner."
    )


class _Progress:
    def __init__(
        self,
        entries: tuple[ManifestEntry, ...],
        listener: Callable[[DownloadProgress], None] | None,
    ) -> None:
        self.listener = listener
        self.state = DownloadProgress(
            files_total=len(entries),
            files_done=0,
            bytes_total=sum(entry.plaintext_size for entry in entries),
            bytes_done=0,
        )

    def done(self, entry: ManifestEntry) -> None:
        self.state = msgspec.structs.replace(
            self.state,
            files_done=self.state.files_done + 1,
            bytes_done=self.state.bytes_done + entry.plaintext_size,
        )
        if self.listener is not None:
            self.listener(self.state)

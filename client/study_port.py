"""The studies a tab has opened for its viewer and download windows (protocol.md §14.5).

A viewer or download window holds no account key. The app's worker gives it a port bound to
one study, and every request on that port lands here: the study is opened with the account's
keys (signed manifest, metadata and version checked by :class:`Downloader`), and files leave
only decrypted and verified, chunk by chunk against the study key and as a whole against the
signed hash. A port can read the study it was made for and nothing else.

Requests are JSON ``{"op": ..., ...}``; answers are JSON like the session's, except that a
file or a piece of one is answered with its bytes (several files with a list of them), which
the worker transfers to the window without copying them into JSON.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import TYPE_CHECKING, Any, Final

from securepacs.client.api import ApiError
from securepacs.client.download import Downloader, LinkKeys, OpenedStudy, instance_names
from securepacs.client.library import short_id
from securepacs.client.read_ahead import ReadAhead
from securepacs.client.transport import CSRF_HEADER, TransportFailure
from securepacs.crypto import PERMISSION_DOWNLOAD
from securepacs.crypto.stream import content_key

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from securepacs.client.api import ApiClient
    from securepacs.client.trust import FingerprintMemory
    from securepacs.client.upload import Digest
    from securepacs.crypto import AccountKeys, ManifestEntry

__all__ = ("StudyPortError", "StudyPorts", "zip_name")

# Open streams per tab: a download window pulls one at a time; this bounds a page that leaks.
MAX_STREAMS: Final = 64
# The most a stream's piece holds: the port transfers each piece as one buffer.
PIECE_BYTES: Final = 8 * 1024 * 1024
# The most one readMany answer holds (a download asks for groups of small files).
MANY_BYTES: Final = 16 * 1024 * 1024


class StudyPortError(Exception):
    """A request a port may not make, or a study that cannot be opened; the text says why."""


class StudyPorts:
    """The opened studies and running streams of one signed-in tab (or one opened link)."""

    def __init__(
        self,
        api: ApiClient,
        keys: AccountKeys | None,
        *,
        advanced: bool = True,
        digest: Digest | None = None,
        link: LinkKeys | None = None,
        fingerprints: FingerprintMemory | None = None,
    ) -> None:
        # Viewing and downloading read through their own downloaders: the server asks for the
        # Download permission only for the second (protocol.md §15.1).
        self.readers = {
            download: Downloader(api, keys, link=link, fingerprints=fingerprints, download=download)
            for download in (False, True)
        }
        self.downloader = self.readers[False]
        # The browser's WebCrypto SHA-256: Python's own, compiled to wasm, would be the slowest
        # step of reading a study (protocol.md §14.5 has the figures' source, bench/viewer.py).
        self.digest = digest
        self.advanced = advanced
        self.opened: dict[str, OpenedStudy] = {}
        self.ahead: dict[tuple[str, bool], ReadAhead] = {}
        self.entries: dict[str, dict[str, ManifestEntry]] = {}
        self.streams: dict[int, tuple[str, AsyncIterator[bytes]]] = {}
        self._handles = itertools.count(1)

    async def study(self, study_id: str) -> OpenedStudy:
        """The opened study, opened on first use (and again after :meth:`refresh`)."""
        opened = self.opened.get(study_id)
        if opened is None:
            opened = await self.downloader.open(study_id)
            self.opened[study_id] = opened
            for download, reader in self.readers.items():
                entries = opened.manifest.entries
                self.ahead[study_id, download] = ReadAhead(reader.api, entries, download=download)
            self.entries[study_id] = {e.file_id.hex(): e for e in opened.manifest.entries}
        return opened

    def refresh(self, study_id: str) -> None:
        """Forget an opened study, so the next window sees the newest version."""
        self.opened.pop(study_id, None)
        for download in (False, True):
            self.ahead.pop((study_id, download), None)
        self.entries.pop(study_id, None)

    async def _read_ahead(
        self, study_id: str, entry: ManifestEntry, download: bool = False
    ) -> bytes | None:
        """The ciphertext if it came (or comes) in a batch; None to read it by range instead.

        A failed batch is not the file's failure: the range read that follows retries, and
        names the instance if it is really missing.
        """
        try:
            return await self.ahead[study_id, download].take(entry)
        except (ApiError, TransportFailure):
            return None

    def _entry(self, study: OpenedStudy, file_id: str) -> ManifestEntry:
        entry = self.entries[study.row.study_id].get(file_id)
        if entry is not None:
            return entry
        raise StudyPortError(
            f"The file {file_id[:8]} is not part of {study.label}. Reload the viewer."
        )

    def _group(self, study: OpenedStudy, file_ids: list[str]) -> list[ManifestEntry]:
        """The entries of a readMany, refused if they hold more than :data:`MANY_BYTES`."""
        entries = [self._entry(study, str(file_id)) for file_id in file_ids]
        if sum(entry.plaintext_size for entry in entries) > MANY_BYTES:
            raise StudyPortError("Too much asked for at once. Reload the window.")
        return entries

    async def view(self, study_id: str) -> dict[str, Any]:
        """What a viewer or download window may know of the study (protocol.md §14.5)."""
        study = await self.study(study_id)
        a = study.row.attributes
        entries = study.manifest.entries
        names = instance_names(entries)
        return {
            "studyId": study_id,
            "patientName": a.patient_name,
            "patientId": a.patient_id,
            "patientSex": a.patient_sex,
            "studyDate": a.study_date,
            "studyDescription": a.study_description,
            "accessionNumber": a.accession_number,
            "modalities": list(a.modalities),
            "instances": [
                {
                    "fileId": entry.file_id.hex(),
                    "seriesUid": entry.series_uid,
                    "instanceUid": entry.instance_uid,
                    "size": entry.plaintext_size,
                }
                for entry in entries
            ],
            "zipName": zip_name(study),
            "zipPaths": {entry.file_id.hex(): names[entry.file_id] for entry in entries},
            # Server-enforced (ZK-5): the owner, or a share or link with Download or more.
            "canDownload": study.row.permission >= PERMISSION_DOWNLOAD,
            "advanced": self.advanced,
        }

    async def read(self, study_id: str, file_id: str, download: bool = False) -> bytes:
        """A whole instance, decrypted and verified."""
        study = await self.study(study_id)
        entry = self._entry(study, file_id)
        reader = self.readers[download]
        ciphertext = await self._read_ahead(study_id, entry, download)
        if ciphertext is not None:
            sha256 = await self.digest(ciphertext) if self.digest is not None else None
            return b"".join(reader.opened(study, entry, ciphertext, sha256))
        return b"".join([piece async for piece in reader.plaintext(study, entry)])

    async def read_many(
        self, study_id: str, file_ids: list[str], download: bool = False
    ) -> list[bytes]:
        """Several whole instances, decrypted and verified, in the order asked.

        A download of many small files asks for them in groups: one port round trip per group
        instead of three per file.
        """
        study = await self.study(study_id)
        entries = self._group(study, file_ids)
        # Together, so that the browser hashes the next files while this one is decrypted.
        return list(
            await asyncio.gather(*(self.read(study_id, e.file_id.hex(), download) for e in entries))
        )

    async def read_plan(
        self, study_id: str, file_ids: list[str], download: bool = False
    ) -> dict[str, Any]:
        """What the worker's own reader needs to do :meth:`read_many` without Python.

        The request that fetches the sealed files and, for each file, its signed manifest entry
        and content key (protocol.md §14.5). The worker calls this itself; a window's port
        never reaches it, so the keys stay in the worker. Same checks as :meth:`read_many`.
        """
        study = await self.study(study_id)
        entries = self._group(study, file_ids)
        api = self.readers[download].api
        request = api.read_blobs_request([e.file_id.hex() for e in entries], download=download)
        return {
            "path": request.path,
            # The API refuses a request without it (what FetchTransport adds to each one).
            "headers": {CSRF_HEADER: "1", **request.headers},
            "body": request.content,
            "files": [
                {
                    "fileId": entry.file_id,
                    "contentKey": content_key(study.study_key, entry.file_id).to_bytes(),
                    "ciphertextSize": entry.ciphertext_size,
                    "plaintextSize": entry.plaintext_size,
                    "ciphertextHash": entry.ciphertext_hash,
                }
                for entry in entries
            ],
        }

    async def stream(self, study_id: str, file_id: str, download: bool = False) -> int:
        """Start pulling an instance piece by piece; the handle is for :meth:`next`."""
        if len(self.streams) >= MAX_STREAMS:
            raise StudyPortError("Too many downloads are running. Close one and try again.")
        study = await self.study(study_id)
        entry = self._entry(study, file_id)
        reader = self.readers[download]
        ciphertext = await self._read_ahead(study_id, entry, download)
        if ciphertext is not None:
            sha256 = await self.digest(ciphertext) if self.digest is not None else None
            pieces = _pieces(reader.opened(study, entry, ciphertext, sha256))
        else:
            pieces = reader.plaintext(study, entry)
        handle = next(self._handles)
        self.streams[handle] = (study_id, pieces)
        return handle

    async def next(self, study_id: str, handle: int) -> bytes | None:
        """The next verified piece of a stream, or None after the last (and the hash check)."""
        owned = self.streams.get(handle)
        if owned is None or owned[0] != study_id:
            raise StudyPortError("This download was stopped. Start it again.")
        try:
            return await anext(owned[1])
        except StopAsyncIteration:
            self.streams.pop(handle, None)
            return None
        except BaseException:
            self.streams.pop(handle, None)
            raise

    async def close(self, study_id: str, handle: int) -> None:
        """Stop a stream early (a cancelled download)."""
        owned = self.streams.get(handle)
        if owned is not None and owned[0] == study_id:
            del self.streams[handle]
            await owned[1].aclose()  # type: ignore[attr-defined]

    async def handle(
        self, study_id: str, request: dict[str, Any], *, download: bool = False
    ) -> Any:
        """Run one port request: bytes for a file or a piece, else a JSON-shaped value.

        ``download``: the port is a download window's (the worker decides, not the window).
        """
        op = request.get("op")
        if op == "open":
            return await self.view(study_id)
        if op == "read":
            return await self.read(study_id, str(request["fileId"]), download)
        if op == "readMany":
            return await self.read_many(study_id, list(request["fileIds"]), download)
        if op == "stream":
            return await self.stream(study_id, str(request["fileId"]), download)
        if op == "next":
            return await self.next(study_id, int(request["handle"]))
        if op == "close":
            await self.close(study_id, int(request["handle"]))
            return None
        raise StudyPortError(f"Unknown request {op!r}. Reload the window.")


def zip_name(study: OpenedStudy) -> str:
    """``PATIENT_DATE_SHORTID.zip``, with only characters every file system takes."""
    a = study.row.attributes
    parts = [a.patient_name.replace("^", " ").strip(), a.study_date, short_id(study.row.study_id)]
    safe = "_".join(
        "".join(c if c.isalnum() or c in "-." else "-" for c in part).strip("-")
        for part in parts
        if part
    )
    return f"{safe or 'study'}.zip"


async def _pieces(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Verified chunks joined into pieces of at most :data:`PIECE_BYTES`."""
    piece: list[bytes] = []
    size = 0
    for chunk in chunks:
        if piece and size + len(chunk) > PIECE_BYTES:
            yield b"".join(piece)
            piece, size = [], 0
        piece.append(chunk)
        size += len(chunk)
    if piece:
        yield b"".join(piece)

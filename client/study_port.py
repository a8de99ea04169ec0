"""The studies a tab has opened for its viewer and download windows (protocol.md §14.5).

A viewer or download window holds no account key. The app's worker gives it a port bound to
one study, and every request on that port lands here: the study is opened with the account's
keys (signed manifest, metadata and version checked by :class:`Downloader`), and files leave
only decrypted and verified, chunk by chunk against the study key and as a whole against the
signed hash. A port can read the study it was made for and nothing else.

Requests are JSON ``{"op": ..., ...}``; answers are JSON like the session's, except that a
file or a piece of one is answered with its bytes, which the worker transfers to the window
without copying them into JSON.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, Final

from securepacs.client.download import Downloader, OpenedStudy, instance_names
from securepacs.client.library import short_id

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from securepacs.client.api import ApiClient
    from securepacs.crypto import AccountKeys, ManifestEntry

__all__ = ("StudyPortError", "StudyPorts", "zip_name")

# Open streams per tab: a download window pulls one at a time; this bounds a page that leaks.
MAX_STREAMS: Final = 64


class StudyPortError(Exception):
    """A request a port may not make, or a study that cannot be opened; the text says why."""


class StudyPorts:
    """The opened studies and running streams of one signed-in tab."""

    def __init__(self, api: ApiClient, keys: AccountKeys, *, advanced: bool = True) -> None:
        self.downloader = Downloader(api, keys)
        self.advanced = advanced
        self.opened: dict[str, OpenedStudy] = {}
        self.streams: dict[int, tuple[str, AsyncIterator[bytes]]] = {}
        self._handles = itertools.count(1)

    async def study(self, study_id: str) -> OpenedStudy:
        """The opened study, opened on first use (and again after :meth:`refresh`)."""
        opened = self.opened.get(study_id)
        if opened is None:
            opened = await self.downloader.open(study_id)
            self.opened[study_id] = opened
        return opened

    def refresh(self, study_id: str) -> None:
        """Forget an opened study, so the next window sees the newest version."""
        self.opened.pop(study_id, None)

    def _entry(self, study: OpenedStudy, file_id: str) -> ManifestEntry:
        for entry in study.manifest.entries:
            if entry.file_id.hex() == file_id:
                return entry
        raise StudyPortError(
            f"The file {file_id[:8]} is not part of {study.label}. Reload the viewer."
        )

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
            # The owner may download; shares say otherwise once they exist (issue 7).
            "canDownload": study.row.is_owner,
            "advanced": self.advanced,
        }

    async def read(self, study_id: str, file_id: str) -> bytes:
        """A whole instance, decrypted and verified."""
        study = await self.study(study_id)
        entry = self._entry(study, file_id)
        return b"".join([piece async for piece in self.downloader.plaintext(study, entry)])

    async def stream(self, study_id: str, file_id: str) -> int:
        """Start pulling an instance piece by piece; the handle is for :meth:`next`."""
        if len(self.streams) >= MAX_STREAMS:
            raise StudyPortError("Too many downloads are running. Close one and try again.")
        study = await self.study(study_id)
        entry = self._entry(study, file_id)
        handle = next(self._handles)
        self.streams[handle] = (study_id, self.downloader.plaintext(study, entry))
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

    async def handle(self, study_id: str, request: dict[str, Any]) -> Any:
        """Run one port request: bytes for a file or a piece, else a JSON-shaped value."""
        op = request.get("op")
        if op == "open":
            return await self.view(study_id)
        if op == "read":
            return await self.read(study_id, str(request["fileId"]))
        if op == "stream":
            return await self.stream(study_id, str(request["fileId"]))
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

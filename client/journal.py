"""The upload journal: what a killed upload had done, so that running it again resumes.

Sealing is deterministic for a given study key and file id (protocol.md §7), so a resumed upload
re-seals each file under the file id it was given the first time and produces the same bytes:
parts the server already holds are skipped, and nothing is uploaded twice. The journal holds the
study key only wrapped under the account key, and names studies by their keyed UID tag; it is
written atomically with owner-only permissions.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from typing import TYPE_CHECKING, Final

import msgspec

from securepacs.crypto import ManifestEntry

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ("Journal", "JournalFile", "JournalStudy")

JOURNAL_VERSION: Final = 1
# Progress is written at most this often: a file finished since the last write is only sent
# again after a crash (the server answers it as already complete), while writing after every
# file would cost O(n^2) on a study of thousands of files.
SAVE_INTERVAL: Final = 1.0


class JournalFile(msgspec.Struct, kw_only=True):
    """One file of a pending study: its file id, and its manifest entry once uploaded."""

    size: int
    mtime_ns: int
    file_id: bytes
    entry: ManifestEntry | None = None


class JournalStudy(msgspec.Struct, kw_only=True):
    """A study whose upload has not been committed yet."""

    study_id: bytes
    wrapped_key: bytes
    files: dict[str, JournalFile] = msgspec.field(default_factory=dict)


class _Document(msgspec.Struct, kw_only=True):
    version: int = JOURNAL_VERSION
    folder: str = ""
    studies: dict[str, JournalStudy] = msgspec.field(default_factory=dict)


class Journal:
    """Pending studies of one upload folder, keyed by the hex of their UID tag."""

    def __init__(self, path: Path | None, folder: str) -> None:
        self.path = path
        self._saved_at = 0.0
        self._doc = _Document(folder=folder)
        if path is not None and path.is_file():
            try:
                loaded = msgspec.json.decode(path.read_bytes(), type=_Document)
            except (msgspec.DecodeError, msgspec.ValidationError):
                loaded = None  # a damaged journal only costs re-uploading; start afresh
            if loaded is not None and loaded.version == JOURNAL_VERSION:
                self._doc = loaded

    @classmethod
    def for_folder(cls, directory: Path | None, folder: Path) -> Journal:
        """The journal of ``folder`` under ``directory`` (None: memory only, as in a browser)."""
        name = str(folder.resolve())
        if directory is None:
            return cls(None, name)
        digest = hashlib.blake2b(name.encode("utf-8"), digest_size=16).hexdigest()
        return cls(directory / f"{digest}.json", name)

    def study(self, tag: bytes) -> JournalStudy | None:
        """The pending study with this UID tag."""
        return self._doc.studies.get(tag.hex())

    def begin(self, tag: bytes, study: JournalStudy) -> JournalStudy:
        """Record a study about to be uploaded.

        Written with the next write: nothing is sent under the study before a full write (the
        uploader writes before every send).
        """
        self._doc.studies[tag.hex()] = study
        self.save(soon=True)
        return study

    def finish(self, tag: bytes) -> None:
        """Forget a committed study; the file goes when nothing is pending.

        Written with the next write: a journal that still lists a committed study costs a
        rerun one lookup, which finds the study complete and drops it (client/upload.py).
        """
        self._doc.studies.pop(tag.hex(), None)
        if not self._doc.studies and self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            return
        self.save(soon=True)

    def save(self, *, soon: bool = False) -> None:
        """Write atomically: a crash leaves the old journal or the new one, never half.

        ``soon`` marks a progress update that may wait for the next write (SAVE_INTERVAL).
        """
        if self.path is None:
            return
        now = time.monotonic()
        if soon and now - self._saved_at < SAVE_INTERVAL:
            return
        self._saved_at = now
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = self.path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        # No fsync: the rename is atomic for a killed process, and a journal that a power cut
        # damages decodes as nothing, which only means uploading again under new file ids.
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(msgspec.json.encode(self._doc))
        temporary.replace(self.path)

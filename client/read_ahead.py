"""Reading a study's next files ahead, many to a request (viewer and download windows).

A viewer loading a series and a download writing a zip read the files of a study mostly in
manifest order, one small file after another. Asked one request per file, the server's
per-request cost (its session check and authorization) dominates: about 10 ms for a 0.5 MB
CT slice. Here, the first read of a file fetches that file and the ones after it in one
``POST /blobs/read`` (up to :data:`BATCH_BYTES` of ciphertext), and keeps up to
:data:`WINDOW_BYTES` fetched or on their way, so that decrypting one batch overlaps fetching
the next. Ciphertext only: nothing here is decrypted or verified, the caller does both.

Files larger than one batch are left to the caller's range reads. Memory stays bounded: what
was read is dropped at once, and a jump elsewhere in the study drops the files left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from securepacs.client.api import ApiClient
    from securepacs.crypto import ManifestEntry

__all__ = ("BATCH_BYTES", "WINDOW_BYTES", "ReadAhead")

BATCH_BYTES: Final = 8 * 1024 * 1024
WINDOW_BYTES: Final = 32 * 1024 * 1024
# A batch names at most this many files (the server takes 512).
BATCH_FILES: Final = 256


class ReadAhead:
    """The ciphertexts of one study's files, fetched in batches ahead of the reader."""

    def __init__(
        self, api: ApiClient, entries: tuple[ManifestEntry, ...], *, download: bool = False
    ) -> None:
        self.api = api
        self.entries = entries
        # A download window's reads, which a share needs Download permission for.
        self.download = download
        self.position = {entry.file_id: index for index, entry in enumerate(entries)}
        self.pending: dict[bytes, asyncio.Future[bytes]] = {}
        # Files handed out in this pass, which read-ahead skips; reading one again starts anew.
        self.consumed: set[bytes] = set()
        self.next = 0  # where the next batch starts, unless a read jumps elsewhere
        self.requests = 0

    def _batchable(self, entry: ManifestEntry) -> bool:
        return entry.ciphertext_size <= BATCH_BYTES

    def _pending_bytes(self) -> int:
        return sum(self.entries[self.position[f]].ciphertext_size for f in self.pending)

    def _forget(self, keep: int) -> None:
        """Stop holding what was read ahead before ``keep``, or all of it if the window is full.

        A reader already waiting on one of those still gets it: only this map lets go.
        """
        full = self._pending_bytes() >= WINDOW_BYTES
        for file_id in [f for f in self.pending if full or self.position[f] < keep]:
            del self.pending[file_id]

    def _schedule(self, start: int) -> None:
        """Ask for batches from ``start`` on while the window has room."""
        index = max(start, self.next)
        room = WINDOW_BYTES - self._pending_bytes()
        while index < len(self.entries) and room > 0:
            batch: list[ManifestEntry] = []
            size = 0
            while index < len(self.entries) and len(batch) < BATCH_FILES:
                entry = self.entries[index]
                skip = entry.file_id in self.consumed or not self._batchable(entry)
                if skip or entry.file_id in self.pending:
                    if batch:
                        break
                    index += 1
                    continue
                if batch and size + entry.ciphertext_size > BATCH_BYTES:
                    break
                batch.append(entry)
                size += entry.ciphertext_size
                index += 1
            if not batch:
                break
            self._fetch(batch)
            room -= size
        self.next = index

    def _fetch(self, batch: list[ManifestEntry]) -> None:
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in batch]
        for entry, future in zip(batch, futures, strict=True):
            self.pending[entry.file_id] = future
        self.requests += 1

        async def run() -> None:
            try:
                ids = [entry.file_id.hex() for entry in batch]
                body = await self.api.read_blobs(ids, download=self.download)
            except BaseException as error:  # noqa: BLE001 -- every waiter hears the failure
                for future in futures:
                    if not future.done():
                        future.set_exception(error)
                return
            offset = 0
            for entry, future in zip(batch, futures, strict=True):
                piece = body[offset : offset + entry.ciphertext_size]
                offset += entry.ciphertext_size
                if not future.done():
                    future.set_result(piece)

        task = loop.create_task(run())
        # A batch nobody waits for any more (dropped) must not log "exception never retrieved".
        for future in futures:
            future.add_done_callback(_quiet)
        task.add_done_callback(_quiet_task)

    async def take(self, entry: ManifestEntry) -> bytes | None:
        """The whole ciphertext of ``entry``, or None when the caller should read it by range.

        Raises:
            ApiError, TransportFailure: the batch request failed (the caller may retry by range).
        """
        index = self.position.get(entry.file_id)
        if index is None or not self._batchable(entry):
            return None
        if entry.file_id in self.consumed:
            # Read again (a second download, an evicted slice): a new pass starts here.
            self.consumed.clear()
        if entry.file_id not in self.pending:
            # Not read ahead: a jump (another series, a slice far away) or a step backwards.
            self._forget(index)
            self.next = index
        self._schedule(index)
        future = self.pending.get(entry.file_id)
        if future is None:
            return None
        try:
            return await asyncio.shield(future)
        finally:
            if future.done():
                self.pending.pop(entry.file_id, None)
                self.consumed.add(entry.file_id)
                self._schedule(index + 1)


def _quiet(future: asyncio.Future[bytes]) -> None:
    if not future.cancelled():
        future.exception()


def _quiet_task(task: asyncio.Task[None]) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        task.result()

"""Reading ahead in batches (client/read_ahead.py): right bytes, few requests, bounded memory.

The API here is a stand-in that serves made-up ciphertexts by id and counts its requests: the
read-ahead only moves opaque bytes (the study port verifies them, see test_study_port.py).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securepacs.client.api import ApiError
from securepacs.client.read_ahead import BATCH_BYTES, WINDOW_BYTES, ReadAhead
from securepacs.crypto import ManifestEntry

if TYPE_CHECKING:
    from securepacs.client.api import ApiClient

MB = 1024 * 1024


def _entries(sizes: list[int]) -> tuple[ManifestEntry, ...]:
    return tuple(
        ManifestEntry(
            file_id=index.to_bytes(16, "big"),
            plaintext_size=max(size - 16, 0),
            ciphertext_size=size,
            ciphertext_hash=bytes(32),
            series_uid="1.2.3",
            instance_uid=f"1.2.3.{index}",
        )
        for index, size in enumerate(sizes)
    )


def _body(file_id: str, size: int) -> bytes:
    return bytes.fromhex(file_id)[-1:] * size


class Server:
    """Serves ``POST /blobs/read``: each blob's bytes are its last id byte, repeated."""

    def __init__(self, entries: tuple[ManifestEntry, ...], *, fail: bool = False) -> None:
        self.sizes = {e.file_id.hex(): e.ciphertext_size for e in entries}
        self.batches: list[list[str]] = []
        self.fail = fail
        self.in_flight = 0
        self.most_in_flight = 0
        self.downloads: list[bool] = []

    async def read_blobs(self, blob_ids: list[str], *, download: bool = False) -> bytes:
        self.batches.append(blob_ids)
        self.downloads.append(download)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)
            if self.fail:
                raise ApiError(503, "unavailable", "busy", None)
            return b"".join(_body(i, self.sizes[i]) for i in blob_ids)
        finally:
            self.in_flight -= 1


def _reader(server: Server, entries: tuple[ManifestEntry, ...]) -> ReadAhead:
    return ReadAhead(cast("ApiClient", server), entries)


@pytest.mark.anyio
async def test_read_ahead_reads_a_series_in_order_with_few_requests() -> None:
    entries = _entries([MB // 2] * 300)
    server = Server(entries)
    ahead = _reader(server, entries)
    for entry in entries:
        got = await ahead.take(entry)
        assert got == _body(entry.file_id.hex(), entry.ciphertext_size)
    # 150 MB in batches of 8 MiB: about 19 requests instead of 300.
    assert len(server.batches) == -(-300 * (MB // 2) // BATCH_BYTES)
    assert sorted(i for batch in server.batches for i in batch) == sorted(
        e.file_id.hex() for e in entries
    )
    assert ahead.pending == {}


@pytest.mark.anyio
async def test_read_ahead_leaves_files_bigger_than_a_batch_to_range_reads() -> None:
    entries = _entries([MB, BATCH_BYTES + 1, MB])
    server = Server(entries)
    ahead = _reader(server, entries)
    assert await ahead.take(entries[1]) is None
    assert await ahead.take(entries[0]) == _body(entries[0].file_id.hex(), MB)
    assert await ahead.take(entries[2]) == _body(entries[2].file_id.hex(), MB)
    assert all(entries[1].file_id.hex() not in batch for batch in server.batches)
    assert len(server.batches) == 2  # the big file splits the run in two batches


@pytest.mark.anyio
async def test_read_ahead_starts_a_new_pass_when_a_file_is_read_again() -> None:
    entries = _entries([MB // 2] * 40)
    server = Server(entries)
    ahead = _reader(server, entries)
    for _ in range(2):  # a download, cancelled and started again
        for entry in entries:
            assert await ahead.take(entry) == _body(entry.file_id.hex(), MB // 2)
    assert len(server.batches) == 2 * -(-40 * (MB // 2) // BATCH_BYTES)


@pytest.mark.anyio
async def test_read_ahead_passes_a_failed_batch_to_every_reader_waiting_on_it() -> None:
    entries = _entries([1000] * 4)
    ahead = _reader(Server(entries, fail=True), entries)
    results = await asyncio.gather(*(ahead.take(e) for e in entries), return_exceptions=True)
    assert all(isinstance(r, ApiError) for r in results)


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 3 * MB), min_size=1, max_size=80),
    order=st.lists(st.integers(0, 79), max_size=120),
    concurrent=st.integers(1, 6),
)
def test_read_ahead_any_order_gives_the_right_bytes_and_stays_bounded(
    sizes: list[int], order: list[int], concurrent: int
) -> None:
    entries = _entries(sizes)
    picks = [entries[i % len(entries)] for i in order]

    async def run() -> None:
        server = Server(entries)
        ahead = _reader(server, entries)
        for start in range(0, len(picks), concurrent):
            group = picks[start : start + concurrent]
            got = await asyncio.gather(*(ahead.take(e) for e in group))
            for entry, data in zip(group, got, strict=True):
                if data is not None:
                    assert data == _body(entry.file_id.hex(), entry.ciphertext_size)
            held = sum(entries[ahead.position[f]].ciphertext_size for f in ahead.pending)
            assert held <= WINDOW_BYTES + BATCH_BYTES
        # Read in order from the start, the rest comes in batches, each file once.
        before = len(server.batches)
        for entry in entries:
            assert await ahead.take(entry) in (
                None,
                _body(entry.file_id.hex(), entry.ciphertext_size),
            )
        fetched = [i for batch in server.batches[before:] for i in batch]
        assert len(fetched) == len(set(fetched))

    asyncio.run(run())


@pytest.mark.anyio
async def test_a_download_window_reads_ahead_as_a_download() -> None:
    entries = _entries([MB // 2] * 4)
    for download in (False, True):
        server = Server(entries)
        ahead = ReadAhead(cast("ApiClient", server), entries, download=download)
        for entry in entries:
            await ahead.take(entry)
        assert server.downloads and set(server.downloads) == {download}

"""The blob store behind SECUREPACS_BLOB_URL: local disk by default, memory for tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from securepacs.server.blobs import BlobStore, BlobStoreUnavailable

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("kind", ["file", "memory"])
async def test_blobs_put_get_delete_round_trip(tmp_path: Path, kind: str) -> None:
    url = (tmp_path / "blobs").as_uri() if kind == "file" else "memory:///"
    store = BlobStore(url)
    await store.check()
    await store.put("studies/abc/1", b"\x00ciphertext\xff")
    assert await store.get("studies/abc/1") == b"\x00ciphertext\xff"
    await store.delete("studies/abc/1")
    await store.delete("studies/abc/1")  # deleting twice is fine
    with pytest.raises(FileNotFoundError):
        await store.get("studies/abc/1")
    if kind == "file":
        assert (tmp_path / "blobs" / ".securepacs-ready").read_bytes() == b"ok"


async def test_blobs_unreachable_store_is_reported(tmp_path: Path) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a folder should be")
    store = BlobStore.__new__(BlobStore)
    store.scheme = "file"
    from obstore.store import LocalStore

    store._store = LocalStore(prefix=blocked)
    with pytest.raises(BlobStoreUnavailable):
        await store.check()

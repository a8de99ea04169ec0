"""The blob store against a real S3-compatible service: SeaweedFS, signed requests only."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import httpx
import obstore
import pytest
from obstore.store import S3Store

from securepacs.server.blobs import BlobStore

if TYPE_CHECKING:
    from tests.object_stores import S3Target

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024


def _prefix(url: str) -> str:
    """The key prefix that ``s3://bucket/<prefix>`` puts in front of every key."""
    return url.split("/", 3)[3]


async def test_blobs_seaweedfs_check_put_get_delete(s3_store_url: str) -> None:
    store = BlobStore(s3_store_url)
    assert store.scheme == "s3"
    await store.check()
    await store.put("studies/abc/1", b"\x00ciphertext\xff")
    assert await store.get("studies/abc/1") == b"\x00ciphertext\xff"
    await store.put("studies/abc/1", b"replaced")
    assert await store.get("studies/abc/1") == b"replaced"
    await store.delete("studies/abc/1")
    await store.delete("studies/abc/1")  # deleting twice is fine
    with pytest.raises(FileNotFoundError):
        await store.get("studies/abc/1")


async def test_blobs_seaweedfs_missing_key_is_file_not_found(s3_store_url: str) -> None:
    store = BlobStore(s3_store_url)
    with pytest.raises(FileNotFoundError):
        await store.get("studies/never-written")


async def test_blobs_seaweedfs_ranged_reads(s3_store_url: str) -> None:
    store = BlobStore(s3_store_url)
    data = os.urandom(3 * MIB)
    await store.put("studies/big/series", data)
    assert await store.get("studies/big/series") == data

    edges = [(0, 1), (0, MIB), (MIB - 1, MIB + 1), (2 * MIB + 5, 3 * MIB), (3 * MIB - 1, 3 * MIB)]
    for start, end in edges:
        part = await obstore.get_range_async(
            store._store, "studies/big/series", start=start, end=end
        )
        assert bytes(part) == data[start:end], (start, end)
    parts = await obstore.get_ranges_async(
        store._store,
        "studies/big/series",
        starts=[start for start, _ in edges],
        ends=[end for _, end in edges],
    )
    assert [bytes(part) for part in parts] == [data[start:end] for start, end in edges]


async def test_blobs_seaweedfs_list_by_prefix(s3_store_url: str) -> None:
    store = BlobStore(s3_store_url)
    keys = ["studies/a/1", "studies/a/2", "studies/b/1", "accounts/x"]
    for key in keys:
        await store.put(key, key.encode())
    listed = [meta["path"] for chunk in obstore.list(store._store, "studies/a") for meta in chunk]
    assert sorted(listed) == ["studies/a/1", "studies/a/2"]
    everything = [meta["path"] for chunk in obstore.list(store._store) for meta in chunk]
    assert sorted(everything) == sorted(keys)  # other tests' prefixes stay out of sight


async def test_blobs_seaweedfs_prefixes_isolate_tests(
    seaweedfs: S3Target, s3_store_url: str
) -> None:
    # The bucket-wide view: this test's objects are under its own prefix and nowhere else.
    await BlobStore(s3_store_url).put("studies/abc/1", b"sealed bytes")
    bucket = S3Store(seaweedfs.bucket)  # configured from the environment, like BlobStore
    paths = [meta["path"] for chunk in obstore.list(bucket) for meta in chunk]
    assert f"{_prefix(s3_store_url)}/studies/abc/1" in paths
    assert all(not path.startswith("studies/") for path in paths)


def test_blobs_seaweedfs_refuses_unsigned_requests(seaweedfs: S3Target) -> None:
    with httpx.Client(trust_env=False) as http:
        written = http.put(f"{seaweedfs.endpoint}/{seaweedfs.bucket}/anonymous", content=b"x")
        listed = http.get(f"{seaweedfs.endpoint}/{seaweedfs.bucket}?list-type=2")
    assert written.status_code == 403
    assert listed.status_code == 403

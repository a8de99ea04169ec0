"""The blob store behind SECUREPACS_BLOB_URL: local disk by default, S3-compatible, memory."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from litestar.testing import AsyncTestClient

from securepacs.server.app import create_app
from securepacs.server.blobs import BlobStore, BlobStoreUnavailable
from securepacs.server.settings import load_settings

if TYPE_CHECKING:
    from collections.abc import Iterator

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


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real S3-compatible server (moto) on a free loopback port, with one bucket."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.put(f"{endpoint}/securepacs-test", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("the S3 test server did not start")
        for name, value in {
            "AWS_ENDPOINT": endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(name, value)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


async def test_blobs_s3_url_uses_an_s3_compatible_store(s3_endpoint: str, tmp_path: Path) -> None:
    store = BlobStore("s3://securepacs-test/blobs")
    assert store.scheme == "s3"
    await store.check()
    await store.put("studies/abc/1", b"sealed bytes")
    assert await store.get("studies/abc/1") == b"sealed bytes"
    listing = httpx.get(f"{s3_endpoint}/securepacs-test?list-type=2").text
    assert "blobs/studies/abc/1" in listing
    settings = load_settings(
        {
            "SECUREPACS_DATA_DIR": str(tmp_path / "data"),
            "SECUREPACS_BLOB_URL": "s3://securepacs-test/blobs",
        }
    )
    async with AsyncTestClient(create_app(settings)) as client:
        assert (await client.get("/ready")).json() == {"status": "ready"}
    assert not (tmp_path / "data" / "blobs").exists()

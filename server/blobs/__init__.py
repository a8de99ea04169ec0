"""Where ciphertext lives: one object-store API (obstore) over local disk, S3 or memory.

The store only ever receives ciphertext blobs the clients sealed; the server cannot read them.
``SECUREPACS_BLOB_URL`` picks it: ``file:///path`` (the default, under the data directory),
``s3://bucket/prefix`` (any S3-compatible service; credentials and endpoint from the usual
``AWS_*`` variables), or ``memory:///`` for tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final
from urllib.parse import unquote, urlsplit

import obstore
from obstore.store import ObjectStore, from_url

__all__ = ("BlobStore", "BlobStoreUnavailable")

_PROBE: Final = ".securepacs-ready"


class BlobStoreUnavailable(Exception):
    """The configured store does not answer."""


class BlobStore:
    """Thin async wrapper: put, get, delete, and a readiness probe."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme == "file":
            # obstore creates nothing by itself; the default store must work on first start.
            Path(unquote(parts.path)).mkdir(parents=True, exist_ok=True)
        self.scheme = parts.scheme
        self._store: ObjectStore = from_url(url)

    async def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` (replacing any previous object)."""
        await obstore.put_async(self._store, key, data)

    async def get(self, key: str) -> bytes:
        """The whole object."""
        result = await obstore.get_async(self._store, key)
        return bytes(await result.bytes_async())

    async def get_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``start`` (inclusive) to ``end`` (exclusive) of ``key``."""
        return bytes(await obstore.get_range_async(self._store, key, start=start, end=end))

    async def delete_many(self, keys: list[str]) -> None:
        """Remove every key; missing objects are not an error."""
        for key in keys:
            await self.delete(key)

    async def delete(self, key: str) -> None:
        """Remove ``key``; a missing object is not an error."""
        try:
            await obstore.delete_async(self._store, key)
        except FileNotFoundError:
            return

    async def check(self) -> None:
        """Write and read back a probe object; raises BlobStoreUnavailable."""
        try:
            await self.put(_PROBE, b"ok")
            if await self.get(_PROBE) != b"ok":
                raise BlobStoreUnavailable
        except BlobStoreUnavailable:
            raise
        except Exception as error:  # noqa: BLE001 -- every backend failure means "unavailable"
            raise BlobStoreUnavailable(type(error).__name__) from None

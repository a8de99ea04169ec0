"""The upload without the files' encryption: the baseline of bench/upload.py.

``without_file_encryption()`` swaps the uploader's per-file sealing for a stand-in that sends
each file's own bytes (with the SHA-256 the server asks of every blob). Keys, metadata boxes,
signed manifests, the journal, the scan process, batching, requests and commits stay exactly as
the CLI runs them, so encrypted against plain is what encrypting the bytes costs. Benchmarks
only: the product has no way to upload without encryption.
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import TYPE_CHECKING

import securepacs.client.upload as upload_module
from securepacs.client.sealing import READ_BYTES
from securepacs.crypto import ManifestEntry, new_file_id

if TYPE_CHECKING:
    from collections.abc import Iterator

    from securepacs.client.scanned import Instance

__all__ = ("without_file_encryption",)


class _PlainInstance:
    """Stands in for ``SealedInstance``: the file's own bytes, hashed, with no encryption."""

    def __init__(self, _: object, instance: Instance, file_id: bytes | None = None) -> None:
        self.instance = instance
        self.file_id = file_id or new_file_id()
        self._entry: ManifestEntry | None = None

    def chunks(self) -> Iterator[bytes]:
        digest = hashlib.sha256()
        size = 0
        with open(self.instance.path, "rb") as handle:  # noqa: PTH123 -- a path string
            while block := handle.read(READ_BYTES):
                digest.update(block)
                size += len(block)
                yield block
        self._entry = ManifestEntry(
            file_id=self.file_id,
            plaintext_size=size,
            ciphertext_size=size,
            ciphertext_hash=digest.digest(),
            series_uid=self.instance.series_instance_uid,
            instance_uid=self.instance.sop_instance_uid,
        )

    @property
    def entry(self) -> ManifestEntry:
        if self._entry is None:
            raise RuntimeError("read chunks() first")
        return self._entry


@contextlib.contextmanager
def without_file_encryption() -> Iterator[None]:
    """Inside, the uploader sends files unencrypted (see the module's docstring)."""
    stand_ins = {"SealedInstance": _PlainInstance, "ciphertext_size": lambda size, *_: size}
    saved = {name: getattr(upload_module, name) for name in stand_ins}
    for name, value in stand_ins.items():
        setattr(upload_module, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(upload_module, name, value)

"""The files a person chose in the browser, read whole and asynchronously, for the worker.

WORKERFS (the worker's view of the chosen folder) reads with FileReaderSync: each read is a
blocking round trip to the browser process, a few milliseconds per call, on the worker's only
thread. ``File.arrayBuffer()`` reads the same bytes without blocking, so reading the next files
overlaps with sealing and with the requests in flight. The uploader takes :func:`read` for
files sent whole (client/upload.py, ``reader``); larger files still stream through WORKERFS.
Importable only in the app's worker, which registers ``_securepacs_files``.
"""

from __future__ import annotations

import _securepacs_files  # type: ignore[import-not-found]

__all__ = ("read",)


async def read(path: str) -> bytes:
    """The content of the chosen file mounted at ``path``."""
    buffer = await _securepacs_files.read(path)
    data: bytes = buffer.to_bytes()
    return data

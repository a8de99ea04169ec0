"""SHA-256 by the browser's WebCrypto, for the Pyodide worker.

Python's own SHA-256 compiled to WebAssembly hashes about 150 MB/s in Chromium, on the worker's
only thread, where sealing needs the time; ``crypto.subtle.digest`` is native code and runs
beside it. The uploader takes it for whole blobs and parts (client/upload.py, ``digest``).
Importable only in Pyodide (``js`` and ``pyodide`` are its modules).
"""

from __future__ import annotations

import js  # type: ignore[import-not-found]
from pyodide.ffi import to_js  # type: ignore[import-not-found]

__all__ = ("sha256",)


async def sha256(data: bytes) -> bytes:
    """The SHA-256 of ``data``."""
    digest = await js.crypto.subtle.digest("SHA-256", to_js(data))
    result: bytes = digest.to_bytes()
    return result

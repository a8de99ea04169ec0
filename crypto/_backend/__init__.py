"""Chooses the primitive backend once: libsodium.js under Pyodide, PyNaCl everywhere else.

Nothing outside this package imports PyNaCl or touches libsodium.js; the rest of
``securepacs.crypto`` calls :func:`get_backend` and sees only :class:`Backend`.
"""

from __future__ import annotations

import sys

from securepacs.crypto._backend.protocol import Backend

__all__ = ("Backend", "get_backend")


_chosen: list[Backend] = []


def get_backend() -> Backend:
    """Return the process-wide backend, choosing it on first use."""
    if not _chosen:
        _chosen.append(_choose())
    return _chosen[0]


def _choose() -> Backend:
    if sys.platform == "emscripten":  # pragma: no cover -- runs in Pyodide (tests/pyodide)
        from securepacs.crypto._backend.sodiumjs import SodiumJsBackend

        return SodiumJsBackend()
    from securepacs.crypto._backend.nacl import NaclBackend

    return NaclBackend()

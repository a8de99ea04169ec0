"""Where randomness comes from, so that test vectors can replay it.

Public recipes draw from the backend's CSPRNG. The vector generator and runner pass a
:class:`SeededRandom` instead, which makes every sealed output reproducible on both runtimes
from a seed written in the vector. Nothing outside tests may construct one.
"""

from __future__ import annotations

import hashlib
from typing import Final, Protocol

from securepacs.crypto._backend import get_backend

__all__ = ("SYSTEM_RANDOM", "Randomness", "SeededRandom", "SystemRandom")


class Randomness(Protocol):
    """A source of random bytes."""

    def take(self, size: int) -> bytes:
        """Return ``size`` fresh bytes."""
        ...


class SystemRandom:
    """The operating system's CSPRNG through the backend (``randombytes_buf``)."""

    def take(self, size: int) -> bytes:
        return get_backend().randombytes(size)


class SeededRandom:
    """Deterministic bytes: SHAKE-256 of the seed, read sequentially. For test vectors only."""

    def __init__(self, seed: bytes) -> None:
        self._seed = seed
        self._offset = 0

    def take(self, size: int) -> bytes:
        end = self._offset + size
        out = hashlib.shake_256(self._seed).digest(end)[self._offset :]
        self._offset = end
        return out


SYSTEM_RANDOM: Final = SystemRandom()

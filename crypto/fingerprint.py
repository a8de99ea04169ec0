"""Public-key fingerprints that two people can read to each other (protocol.md §5.6, ZK-4)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Final

from securepacs.crypto import _labels
from securepacs.crypto._canonical import labelled

if TYPE_CHECKING:
    from securepacs.crypto.account import PublicKeys

__all__ = ("FINGERPRINT_GROUPS", "fingerprint")

FINGERPRINT_GROUPS: Final = 8
_GROUP_BYTES: Final = 5
_GROUP_MODULUS: Final = 100_000


def fingerprint(keys: PublicKeys) -> str:
    """Eight groups of five digits, e.g. ``"01234 56789 ..."``, about 132 bits.

    Derived from both public keys, so a server that substitutes either one changes it.
    """
    digest = hashlib.blake2b(
        labelled(_labels.FINGERPRINT, keys.x25519 + keys.ed25519), digest_size=64
    ).digest()
    groups = (
        int.from_bytes(digest[i * _GROUP_BYTES : (i + 1) * _GROUP_BYTES], "big") % _GROUP_MODULUS
        for i in range(FINGERPRINT_GROUPS)
    )
    return " ".join(f"{g:05d}" for g in groups)

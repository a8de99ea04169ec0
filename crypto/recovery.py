"""The recovery key as people handle it: grouped text with typo checks, a key file, a Key UID.

protocol.md §5.5. The text form is 64 Crockford base32 characters in eight groups of eight.
Each group carries four key bytes and one check byte bound to the group's position, so a typo
is caught and located ("group 3 has a typo") and two swapped groups are caught too. Reading is
lenient the way Crockford intends (case, ``O``/``0``, ``I``/``L``/``1``, spaces and dashes);
writing is canonical.
"""

from __future__ import annotations

import hashlib
from typing import Final

from securepacs.crypto import _labels
from securepacs.crypto._random import SYSTEM_RANDOM, Randomness
from securepacs.crypto.account import key_uid
from securepacs.crypto.errors import InvalidRecoveryKey
from securepacs.crypto.keys import KEY_BYTES, RecoveryKey

__all__ = (
    "KEY_FILE_NAME",
    "format_key_uid",
    "new_recovery_key",
    "parse_key_file",
    "parse_recovery_text",
    "recovery_key_file",
    "recovery_text",
)

KEY_FILE_NAME: Final = "securepacs-recovery-key.txt"
GROUPS: Final = 8
GROUP_DATA_BYTES: Final = KEY_BYTES // GROUPS
GROUP_CHARS: Final = 8
MAX_TEXT_CHARS: Final = 1024

_ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_READ_ALIASES: Final = {"O": "0", "I": "1", "L": "1"}
_DECODE: Final = {c: i for i, c in enumerate(_ALPHABET)}
_FILE_TITLE: Final = "SecurePACS recovery key"
_FILE_VERSION: Final = "Version: 1"


def new_recovery_key(rng: Randomness = SYSTEM_RANDOM) -> RecoveryKey:
    """256 fresh random bits."""
    return RecoveryKey(rng.take(KEY_BYTES))


def format_key_uid(key: RecoveryKey) -> str:
    """The Key UID shown in My Account and sent to the server: 32 lowercase hex digits."""
    return key_uid(key).hex()


def _check_byte(index: int, data: bytes) -> int:
    label = _labels.RECOVERY_CHECK.encode("ascii")
    digest = hashlib.blake2b(bytes((len(label),)) + label + bytes((index,)) + data, digest_size=1)
    return digest.digest()[0]


def recovery_text(key: RecoveryKey) -> str:
    """The canonical text form: ``XXXXXXXX-XXXXXXXX-...`` (8 groups of 8)."""
    groups = []
    material = key._material
    for index in range(GROUPS):
        data = material[index * GROUP_DATA_BYTES : (index + 1) * GROUP_DATA_BYTES]
        value = int.from_bytes(data + bytes((_check_byte(index, data),)), "big")
        groups.append(
            "".join(
                _ALPHABET[(value >> (5 * (GROUP_CHARS - 1 - i))) & 31] for i in range(GROUP_CHARS)
            )
        )
    return "-".join(groups)


def parse_recovery_text(text: str) -> RecoveryKey:
    """Read a recovery key typed or pasted by a person.

    Raises:
        InvalidRecoveryKey: wrong length or characters (no group) or a failed group check
            (``group`` is the 1-based group with the typo).
    """
    if not isinstance(text, str):
        raise TypeError("recovery key text must be str")
    # Full Unicode case mapping would read "ß" as "SS": only ASCII can spell a key.
    if len(text) > MAX_TEXT_CHARS or not text.isascii():
        raise InvalidRecoveryKey
    chars = [_READ_ALIASES.get(c, c) for c in text.upper() if c not in " -\t\r\n"]
    if len(chars) != GROUPS * GROUP_CHARS or any(c not in _DECODE for c in chars):
        raise InvalidRecoveryKey(
            "A recovery key has 64 letters and digits in 8 groups. "
            "Check that you copied all of it, or load the key file instead."
        )
    material = bytearray()
    for index in range(GROUPS):
        value = 0
        for c in chars[index * GROUP_CHARS : (index + 1) * GROUP_CHARS]:
            value = (value << 5) | _DECODE[c]
        group = value.to_bytes(GROUP_DATA_BYTES + 1, "big")
        if _check_byte(index, group[:GROUP_DATA_BYTES]) != group[GROUP_DATA_BYTES]:
            raise InvalidRecoveryKey(group=index + 1)
        material += group[:GROUP_DATA_BYTES]
    return RecoveryKey(bytes(material))


def recovery_key_file(key: RecoveryKey) -> bytes:
    """The downloadable key file (UTF-8 text, LF line ends). protocol.md §5.5."""
    lines = (
        _FILE_TITLE,
        _FILE_VERSION,
        f"Key UID: {format_key_uid(key)}",
        f"Key: {recovery_text(key)}",
        "",
        "This key restores access to your encrypted studies after a password reset.",
        "Keep it private: never send it in a support ticket, an email, a chat or a screenshot.",
        "",
    )
    return "\n".join(lines).encode("utf-8")


def parse_key_file(data: bytes) -> RecoveryKey:
    """Read a key file written by :func:`recovery_key_file` (CRLF line ends are accepted).

    Raises:
        InvalidRecoveryKey: not a key file, an edited key, or a Key UID that does not match.
    """
    not_a_key_file = InvalidRecoveryKey(
        "This file is not a SecurePACS recovery key file. "
        f"Choose the file named {KEY_FILE_NAME}, or type the key instead."
    )
    if len(data) > 4 * MAX_TEXT_CHARS:
        raise not_a_key_file
    try:
        lines = data.decode("utf-8").replace("\r\n", "\n").split("\n")
    except UnicodeDecodeError:
        raise not_a_key_file from None
    if len(lines) < 4 or lines[0] != _FILE_TITLE:
        raise not_a_key_file
    if lines[1] != _FILE_VERSION:
        raise InvalidRecoveryKey(
            "This recovery key file was made by a newer SecurePACS. Update the client."
        )
    uid_prefix, key_prefix = "Key UID: ", "Key: "
    if not lines[2].startswith(uid_prefix) or not lines[3].startswith(key_prefix):
        raise not_a_key_file
    key = parse_recovery_text(lines[3][len(key_prefix) :])
    if lines[2][len(uid_prefix) :] != format_key_uid(key):
        raise InvalidRecoveryKey(
            "The key in this file does not match its Key UID: the file was edited or damaged."
        )
    return key

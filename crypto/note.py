"""Share notes: the sharer's optional message that travels with a share, unreadable to the server.

protocol.md §8.6. A note is UTF-8 text of at most 4096 bytes, encrypted under a key derived from
the study key and the share's id, and bound to the study and the share in its associated data.
Every holder of the study key can open it; what it keeps from the server is the message body
(ZK-1), and the share id in the key and the associated data keeps the server from moving a note
from one share to another (ZK-3).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import msgspec

from securepacs.crypto import _labels
from securepacs.crypto._backend import get_backend
from securepacs.crypto._canonical import FORMAT_VERSION, decode, encode, labelled, tuple_bytes
from securepacs.crypto._random import SYSTEM_RANDOM, Randomness
from securepacs.crypto.envelope import MAX_NOTE_BYTES, Kind, ShareNoteEnvelope
from securepacs.crypto.errors import AuthenticationFailed, MalformedEnvelope
from securepacs.crypto.kdf import derive_key_bytes
from securepacs.crypto.study import _check_study_id, _seal

if TYPE_CHECKING:
    from securepacs.crypto.keys import StudyKey

__all__ = ("MAX_NOTE_BYTES", "SHARE_ID_BYTES", "open_note", "seal_note")

SHARE_ID_BYTES: Final = 16

_DECODER: Final = msgspec.msgpack.Decoder(ShareNoteEnvelope)


def _note_key(study_key: StudyKey, share_id: bytes) -> bytes:
    # The share id is the derivation context: each share's note has a key of its own.
    return derive_key_bytes(study_key._material, _labels.SHARE_NOTE_KEY, share_id)


def _note_ad(study_id: bytes, share_id: bytes) -> bytes:
    header = tuple_bytes(Kind.SHARE_NOTE, FORMAT_VERSION, study_id, share_id)
    return labelled(_labels.SHARE_NOTE_AD, header)


def _note_text(text: str) -> bytes:
    if not isinstance(text, str):
        raise TypeError("a share note is a str")
    if not text:
        raise ValueError("a share note must not be empty")
    try:
        data = text.encode("utf-8")
    # The codec's own message quotes the offending character, which is part of the note.
    except UnicodeEncodeError:
        raise ValueError("a share note must be Unicode text without lone surrogates") from None
    if len(data) > MAX_NOTE_BYTES:
        raise ValueError(f"a share note is limited to {MAX_NOTE_BYTES} bytes of UTF-8")
    return data


def seal_note(
    study_key: StudyKey,
    study_id: bytes,
    share_id: bytes,
    text: str,
    rng: Randomness = SYSTEM_RANDOM,
) -> bytes:
    """Encrypt the sharer's message for the share ``share_id`` of a study. protocol.md §8.6.

    The server stores and forwards the note but cannot read it (ZK-1); the note opens only for
    the study and the share it was sealed for (ZK-3). Anyone holding the study key can open it.

    Raises:
        TypeError: ``text`` is not a ``str``.
        ValueError: an id is not 16 bytes, or ``text`` is empty, holds a lone surrogate, or is
            longer than :data:`MAX_NOTE_BYTES` bytes in UTF-8.
    """
    _check_study_id(study_id)
    if len(share_id) != SHARE_ID_BYTES:
        raise ValueError("share ids are 16 bytes")
    plaintext = _note_text(text)
    nonce, ciphertext = _seal(
        _note_key(study_key, share_id), plaintext, _note_ad(study_id, share_id), rng
    )
    return encode(
        ShareNoteEnvelope(
            kind=Kind.SHARE_NOTE,
            version=FORMAT_VERSION,
            study_id=study_id,
            share_id=share_id,
            nonce=nonce,
            ciphertext=ciphertext,
        )
    )


def open_note(study_key: StudyKey, study_id: bytes, share_id: bytes, sealed: bytes) -> str:
    """Decrypt the note of the share ``share_id`` of the study ``study_id``. protocol.md §8.6.

    Raises:
        MalformedEnvelope, UnsupportedVersion: not a v1 share note, or its text is not UTF-8.
        AuthenticationFailed: wrong study key, another study's or another share's note, or
            tampered.
    """
    env = decode(sealed, _DECODER, Kind.SHARE_NOTE)
    if env.study_id != study_id or env.share_id != share_id:
        raise AuthenticationFailed
    plaintext = get_backend().aead_xchacha20poly1305_ietf_decrypt(
        env.ciphertext, _note_ad(study_id, share_id), env.nonce, _note_key(study_key, share_id)
    )
    try:
        return plaintext.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedEnvelope from None

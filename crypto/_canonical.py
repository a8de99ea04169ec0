"""Strict, canonical msgpack encoding of envelopes (protocol.md §2).

Every envelope is a msgpack array written by msgspec, which always picks the shortest form of
each integer, string and byte string. Decoding therefore re-encodes what it parsed and rejects
the input unless the bytes are identical: a format has exactly one encoding, so signatures,
hashes and associated data can never disagree about what was meant.
"""

from __future__ import annotations

from typing import Final, TypeVar

import msgspec

from securepacs.crypto.errors import MalformedEnvelope, UnsupportedVersion

__all__ = (
    "FORMAT_VERSION",
    "MAX_ENVELOPE_BYTES",
    "decode",
    "encode",
    "labelled",
    "tuple_bytes",
)

FORMAT_VERSION: Final = 1
MAX_ENVELOPE_BYTES: Final = 64 * 1024 * 1024

_ENCODER: Final = msgspec.msgpack.Encoder()

T = TypeVar("T", bound=msgspec.Struct)


class _Head(msgspec.Struct, array_like=True, frozen=True):
    """The first two fields every envelope shares; extra fields are ignored on purpose."""

    kind: int
    version: int


_HEAD_DECODER: Final = msgspec.msgpack.Decoder(_Head)


def encode(value: msgspec.Struct) -> bytes:
    """Encode an envelope in its one canonical form."""
    return _ENCODER.encode(value)


def tuple_bytes(*fields: bytes | int | str | msgspec.Struct | None) -> bytes:
    """Encode a header as a canonical msgpack array (used for associated data and signatures)."""
    return _ENCODER.encode(fields)


def labelled(label: str, payload: bytes) -> bytes:
    """``len(label) || label || payload``: the prefix of all associated data and signed bytes."""
    label_bytes = label.encode("ascii")
    return bytes((len(label_bytes),)) + label_bytes + payload


def decode(data: bytes, decoder: msgspec.msgpack.Decoder[T], kind: int) -> T:
    """Decode ``data`` as the envelope ``kind``, enforcing version, shape and canonical form.

    Raises:
        MalformedEnvelope: wrong kind, wrong shape or sizes, trailing bytes, or non-canonical.
        UnsupportedVersion: a kind this code knows, in a version it does not.
    """
    if not isinstance(data, bytes):
        raise TypeError("envelopes are bytes")
    if len(data) > MAX_ENVELOPE_BYTES:
        raise MalformedEnvelope
    try:
        head = _HEAD_DECODER.decode(data)
    # Deeply nested arrays exhaust msgspec's recursion limit before any type check applies.
    except (msgspec.DecodeError, RecursionError):
        raise MalformedEnvelope from None
    if head.kind != kind:
        raise MalformedEnvelope
    if head.version != FORMAT_VERSION:
        raise UnsupportedVersion
    try:
        value = decoder.decode(data)
    except (msgspec.DecodeError, RecursionError):
        raise MalformedEnvelope from None
    if _ENCODER.encode(value) != data:
        raise MalformedEnvelope
    return value

"""Chunked AEAD for DICOM instances: seekable, and truncation and reordering fail (protocol.md §7).

A STREAM construction over ChaCha20-Poly1305 (IETF). Each instance has its own content key,
derived from the study key and the instance's random file id, so a counter nonce is safe. The
nonce of chunk ``i`` is ``i`` as an 11-byte big-endian integer followed by a last-chunk flag;
the 24-byte header is the associated data of every chunk. Any chunk can be opened on its own
(an HTTP Range read), and a cut at a chunk boundary is told apart from tampering.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Final

from securepacs.crypto import _labels
from securepacs.crypto._backend import get_backend
from securepacs.crypto._random import SYSTEM_RANDOM, Randomness
from securepacs.crypto.errors import (
    AuthenticationFailed,
    MalformedEnvelope,
    TruncatedStream,
    UnsupportedVersion,
)
from securepacs.crypto.kdf import derive_key_bytes
from securepacs.crypto.keys import ContentKey, StudyKey

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from securepacs.crypto.envelope import ManifestEntry

__all__ = (
    "CHUNK_LOG2_DEFAULT",
    "CHUNK_LOG2_MAX",
    "CHUNK_LOG2_MIN",
    "FILE_ID_BYTES",
    "HEADER_BYTES",
    "TAG_BYTES",
    "StreamOpener",
    "StreamSealer",
    "ciphertext_size",
    "content_key",
    "new_file_id",
    "open_instance",
    "open_stream",
)

MAGIC: Final = b"SPCS"
STREAM_VERSION: Final = 1
ALG_CHACHA20_POLY1305: Final = 1
CHUNK_LOG2_MIN: Final = 12
CHUNK_LOG2_MAX: Final = 24
CHUNK_LOG2_DEFAULT: Final = 18
FILE_ID_BYTES: Final = 16
HEADER_BYTES: Final = 24
TAG_BYTES: Final = 16
MAX_CHUNKS: Final = 2**32


def new_file_id(rng: Randomness = SYSTEM_RANDOM) -> bytes:
    """A fresh random 16-byte file id (the content key's context; never reused)."""
    return rng.take(FILE_ID_BYTES)


def content_key(study_key: StudyKey, file_id: bytes) -> ContentKey:
    """The per-instance key: derive(study_key, content-key label, file_id). protocol.md §7.1."""
    if len(file_id) != FILE_ID_BYTES:
        raise ValueError("file ids are 16 bytes")
    return ContentKey(derive_key_bytes(study_key._material, _labels.CONTENT_KEY, file_id))


def _nonce(index: int, last: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def _header(file_id: bytes, chunk_log2: int) -> bytes:
    return MAGIC + bytes((STREAM_VERSION, ALG_CHACHA20_POLY1305, chunk_log2, 0)) + file_id


def _chunks(pieces: Iterable[bytes], size: int) -> Iterator[tuple[bytes, bool]]:
    """Regroup ``pieces`` into ``size``-byte chunks, each with a flag: is it the last one?

    One full chunk is held back, because only the end of input tells which chunk is last. A
    piece that already is a whole chunk passes through without a copy, so a caller reading in
    chunk-sized blocks pays nothing for the regrouping. The final chunk may be shorter (or, for
    empty input, empty).
    """
    pending: bytes | None = None
    # Views into the pieces, joined once per chunk: one copy for unaligned input, none for
    # chunk-sized pieces.
    parts: list[memoryview] = []
    filled = 0
    for piece in pieces:
        if type(piece) is not bytes:
            # Views into a caller's reusable buffer would change under us; take a snapshot.
            piece = bytes(piece)
        position, end = 0, len(piece)
        while position < end:
            if not parts and end - position >= size:
                chunk = piece[position : position + size]
                position += size
            else:
                take = min(size - filled, end - position)
                parts.append(memoryview(piece)[position : position + take])
                filled += take
                position += take
                if filled < size:
                    continue
                chunk = b"".join(parts)
                parts.clear()
                filled = 0
            if pending is not None:
                yield pending, False
            pending = chunk
    if parts:
        if pending is not None:
            yield pending, False
        pending = b"".join(parts)
    yield (b"" if pending is None else pending), True


def ciphertext_size(plaintext_size: int, chunk_log2: int = CHUNK_LOG2_DEFAULT) -> int:
    """Exact size of the sealed stream for a plaintext of ``plaintext_size`` bytes."""
    if plaintext_size < 0 or not CHUNK_LOG2_MIN <= chunk_log2 <= CHUNK_LOG2_MAX:
        raise ValueError("plaintext_size must be >= 0 and chunk_log2 in range")
    chunk = 1 << chunk_log2
    chunks = max(1, -(-plaintext_size // chunk))
    return HEADER_BYTES + plaintext_size + chunks * TAG_BYTES


class StreamSealer:
    """Seals one instance. Use :meth:`seal` for a whole stream, or chunks one by one."""

    def __init__(
        self, study_key: StudyKey, file_id: bytes, chunk_log2: int = CHUNK_LOG2_DEFAULT
    ) -> None:
        if not CHUNK_LOG2_MIN <= chunk_log2 <= CHUNK_LOG2_MAX:
            raise ValueError("chunk_log2 out of range")
        self.file_id: Final = file_id
        self.chunk_size: Final = 1 << chunk_log2
        self.header: Final = _header(file_id, chunk_log2)
        self._key: Final = content_key(study_key, file_id)._material
        self._encrypt: Final = get_backend().aead_chacha20poly1305_ietf_encrypt

    @classmethod
    def new(
        cls,
        study_key: StudyKey,
        rng: Randomness = SYSTEM_RANDOM,
        chunk_log2: int = CHUNK_LOG2_DEFAULT,
    ) -> StreamSealer:
        """A sealer with a fresh file id."""
        return cls(study_key, new_file_id(rng), chunk_log2)

    def seal_chunk(self, index: int, plaintext: bytes, *, last: bool) -> bytes:
        """Seal chunk ``index``. Every chunk but the last is exactly ``chunk_size`` bytes."""
        if len(plaintext) > self.chunk_size or (not last and len(plaintext) != self.chunk_size):
            raise ValueError("only the last chunk may be shorter than chunk_size")
        if last and index and not plaintext:
            raise ValueError("the last chunk is empty only when it is the only chunk")
        return self._encrypt(plaintext, self.header, _nonce(index, last), self._key)

    def seal(self, pieces: Iterable[bytes]) -> Iterator[bytes]:
        """Yield the header, then every sealed chunk, for plaintext given in pieces of any size.

        Memory stays at about two chunks whatever the size of the instance.
        """
        yield self.header
        for index, (chunk, last) in enumerate(_chunks(pieces, self.chunk_size)):
            yield self.seal_chunk(index, chunk, last=last)


class StreamOpener:
    """Opens one instance sealed by :class:`StreamSealer`, sequentially or chunk by chunk."""

    def __init__(self, study_key: StudyKey, file_id: bytes, header: bytes) -> None:
        """Check the header against the expected file id (from the signed manifest).

        Raises:
            MalformedEnvelope: not a stream header, bad chunk size or reserved byte.
            UnsupportedVersion: unknown stream version or algorithm.
            AuthenticationFailed: the header belongs to another file.
        """
        if len(header) != HEADER_BYTES or header[:4] != MAGIC:
            raise MalformedEnvelope
        version, alg, chunk_log2, reserved = header[4], header[5], header[6], header[7]
        if version != STREAM_VERSION or alg != ALG_CHACHA20_POLY1305:
            raise UnsupportedVersion
        if not CHUNK_LOG2_MIN <= chunk_log2 <= CHUNK_LOG2_MAX or reserved:
            raise MalformedEnvelope
        if header[8:] != file_id:
            raise AuthenticationFailed
        self.header: Final = header
        self.chunk_size: Final = 1 << chunk_log2
        self.sealed_chunk_size: Final = self.chunk_size + TAG_BYTES
        self._key: Final = content_key(study_key, file_id)._material
        self._decrypt: Final = get_backend().aead_chacha20poly1305_ietf_decrypt

    def chunk_count(self, total_size: int) -> int:
        """How many chunks a sealed stream of ``total_size`` bytes (header included) holds.

        Raises:
            TruncatedStream: no whole number of chunks fits that size.
        """
        body = total_size - HEADER_BYTES
        if body < TAG_BYTES:
            raise TruncatedStream
        count = -(-body // self.sealed_chunk_size)
        last = body - (count - 1) * self.sealed_chunk_size
        if last < TAG_BYTES or (last == TAG_BYTES and count > 1) or count > MAX_CHUNKS:
            raise TruncatedStream
        return count

    def chunk_span(self, index: int, total_size: int) -> tuple[int, int]:
        """Byte offset and length of sealed chunk ``index``, for an HTTP Range request."""
        count = self.chunk_count(total_size)
        if not 0 <= index < count:
            raise IndexError("chunk index out of range")
        offset = HEADER_BYTES + index * self.sealed_chunk_size
        return offset, min(self.sealed_chunk_size, total_size - offset)

    def open_chunk(self, index: int, sealed: bytes, *, last: bool) -> bytes:
        """Verify and decrypt chunk ``index``; nothing is released unless it verifies.

        Raises:
            AuthenticationFailed: wrong key, moved, reordered or altered chunk.
            TruncatedStream: ``last`` was expected but this chunk was sealed as a middle chunk,
                or a final chunk after chunk 0 holds no plaintext.
        """
        if not 0 <= index < MAX_CHUNKS:
            raise ValueError("chunk index out of range")
        if last and index and len(sealed) <= TAG_BYTES:
            # Writers never end with an empty chunk after chunk 0: what is left was cut short.
            raise TruncatedStream
        if len(sealed) > self.sealed_chunk_size or len(sealed) < TAG_BYTES:
            raise AuthenticationFailed
        if not last and len(sealed) != self.sealed_chunk_size:
            raise AuthenticationFailed
        try:
            plaintext = self._decrypt(sealed, self.header, _nonce(index, last), self._key)
        except AuthenticationFailed:
            if last and len(sealed) == self.sealed_chunk_size:
                # A full chunk that opens as a middle chunk: the stream was cut after it.
                self._decrypt(sealed, self.header, _nonce(index, False), self._key)
                raise TruncatedStream from None
            raise
        return plaintext

    def open(self, pieces: Iterable[bytes]) -> Iterator[bytes]:
        """Yield plaintext chunks of the sealed chunks that follow the header, in order.

        The input may come in pieces of any size. The end of input marks the last chunk.

        Raises:
            TruncatedStream: input ends before the chunk sealed as last.
            AuthenticationFailed, MalformedEnvelope: as :meth:`open_chunk`.
        """
        for index, (sealed, last) in enumerate(_chunks(pieces, self.sealed_chunk_size)):
            if last and len(sealed) < TAG_BYTES:
                raise TruncatedStream
            yield self.open_chunk(index, sealed, last=last)


def open_stream(study_key: StudyKey, file_id: bytes, pieces: Iterable[bytes]) -> Iterator[bytes]:
    """Open a whole sealed stream (header first) given in pieces of any size.

    Raises:
        MalformedEnvelope, UnsupportedVersion, AuthenticationFailed: see :class:`StreamOpener`.
        TruncatedStream: the stream ends before its header or its last chunk.

    Use :func:`open_instance` when a manifest entry is at hand: it also checks the size and
    the hash the uploader signed.
    """
    iterator = iter(pieces)
    head = bytearray()
    for piece in iterator:
        head += piece
        if len(head) >= HEADER_BYTES:
            break
    if len(head) < HEADER_BYTES:
        raise TruncatedStream
    opener = StreamOpener(study_key, file_id, bytes(head[:HEADER_BYTES]))
    rest = bytes(head[HEADER_BYTES:])

    def chained() -> Iterator[bytes]:
        yield rest
        yield from iterator

    yield from opener.open(chained())


def open_instance(
    study_key: StudyKey,
    entry: ManifestEntry,
    pieces: Iterable[bytes],
    *,
    ciphertext_sha256: bytes | None = None,
) -> Iterator[bytes]:
    """Open the instance that a verified manifest entry describes. protocol.md §7.6.

    Every chunk is authenticated as it arrives, and at the end the whole ciphertext must have
    the size and SHA-256 hash that the uploader signed: anyone holding the study key could
    seal a valid stream under the same file id, and only the manifest says which one the
    uploader wrote. The last check can fail after plaintext was yielded, so a caller writes
    to a temporary file and keeps it only when the iterator finishes without an error.

    Raises:
        AuthenticationFailed: any chunk fails, or a size or the hash differs from the entry.
        MalformedEnvelope, UnsupportedVersion, TruncatedStream: as :func:`open_stream`.

    ``ciphertext_sha256``: the SHA-256 of exactly the bytes of ``pieces``, when the caller has
    it already (the browser worker hashes a whole ciphertext with WebCrypto, off its thread);
    it is compared with the entry's hash as the computed one would be.
    """
    digest = hashlib.sha256() if ciphertext_sha256 is None else None
    size = 0
    plaintext_size = 0

    def measured() -> Iterator[bytes]:
        nonlocal size
        for piece in pieces:
            if digest is not None:
                digest.update(piece)
            size += len(piece)
            yield piece

    for chunk in open_stream(study_key, entry.file_id, measured()):
        plaintext_size += len(chunk)
        yield chunk
    if (
        size != entry.ciphertext_size
        or plaintext_size != entry.plaintext_size
        or not hmac.compare_digest(
            digest.digest() if digest is not None else ciphertext_sha256 or b"",
            entry.ciphertext_hash,
        )
    ):
        raise AuthenticationFailed

"""Properties of every format: round trips, one encoding per value, and where a bit flip fails.

* ``open(seal(x)) == x`` for the chunked stream, the metadata box, the study-key wrap, the signed
  manifest, grants, share notes, link envelopes, the three kinds of key slot, public keys, the
  recovery key's text and file forms, and link fragments.
* Every envelope a decoder accepts re-encodes to the same bytes, and the same values written with
  a wider msgpack form (an int as uint16, a bin8 as bin16, a fixarray as array16, ...) are
  rejected as ``MalformedEnvelope``, on the outer envelopes and on the authenticated plaintexts.
* Every single bit flip fails, at the layer the region it hits belongs to.
"""

from __future__ import annotations

import functools
import hashlib
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import securepacs.crypto as c
from securepacs.crypto import _canonical, _labels, account, envelope, note, study
from securepacs.crypto._backend import get_backend
from securepacs.crypto._random import SeededRandom
from securepacs.crypto.envelope import Kind
from securepacs.crypto.kdf import derive_key_bytes, insecure_kdf_floor_for_tests
from securepacs.crypto.stream import HEADER_BYTES, TAG_BYTES
from tests.conftest import seeded_account

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

LOG2: Final = 12
CHUNK: Final = 1 << LOG2
SEALED_CHUNK: Final = CHUNK + TAG_BYTES
BOUNDARY_SIZES: Final = (0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 5)
PASSWORD: Final = "correct horse battery staple"
LINK_PASSWORD: Final = "tulip"
ENVELOPE_ERRORS: Final = (
    c.MalformedEnvelope,
    c.UnsupportedVersion,
    c.AuthenticationFailed,
    c.ParametersRejected,
    c.NoMatchingKey,
)

ids16: Final = st.binary(min_size=16, max_size=16)
key_bytes: Final = st.binary(min_size=32, max_size=32)
study_keys: Final = key_bytes.map(c.StudyKey)
permissions: Final = st.sampled_from(
    [c.PERMISSION_VIEW, c.PERMISSION_DOWNLOAD, c.PERMISSION_EDIT, c.PERMISSION_ADMIN]
)
expiries: Final = st.one_of(st.just(0), st.integers(0, 2**63 - 1))
account_seeds: Final = st.binary(min_size=1, max_size=8)
# Any size, and the sizes that take the regrouping's no-copy path (whole chunks, sealed or not).
piece_sizes: Final = st.lists(
    st.one_of(
        st.integers(0, 3 * CHUNK),
        st.sampled_from([CHUNK, 2 * CHUNK, SEALED_CHUNK, 2 * SEALED_CHUNK, CHUNK - 1, 1]),
    ),
    min_size=1,
    max_size=6,
)


def _rng(name: str) -> SeededRandom:
    return SeededRandom(hashlib.sha256(name.encode()).digest())


@functools.cache
def _account(seed: bytes) -> c.AccountKeys:
    """An account bundle from a seed, without Argon2id (the bundle is what is under test)."""
    return seeded_account(seed)


@functools.cache
def _password_account(name: str) -> c.NewAccount:
    with insecure_kdf_floor_for_tests():
        kdf = c.new_kdf_params(_rng(f"kdf/{name}"), opslimit=1, memlimit_kib=8)
        return c.create_account(PASSWORD, _rng(name), kdf=kdf)


@functools.cache
def _password_link_access(secret: bytes) -> c.LinkAccess:
    return c.link_access(c.LinkSecret(secret), LINK_PASSWORD)


def _plaintext(size: int, seed: int = 0) -> bytes:
    return hashlib.shake_256(f"plaintext/{seed}/{size}".encode()).digest(size)


def _split(data: bytes, sizes: Sequence[int]) -> Iterator[bytes]:
    """``data`` in consecutive pieces of the given sizes (cycled), empty pieces included."""
    offset, turn = 0, 0
    while offset < len(data):
        size = sizes[turn % len(sizes)]
        turn += 1
        if turn % len(sizes) == 0 and not any(sizes):
            size = len(data)
        yield data[offset : offset + size]
        offset += size
    if not data:
        yield b""


def _reencode(data: bytes, cls: type[envelope._Envelope], kind: int) -> bytes:
    decoded = _canonical.decode(data, msgspec.msgpack.Decoder(cls), kind)
    return _canonical.encode(decoded)


def _same_account(a: c.AccountKeys, b: c.AccountKeys) -> bool:
    return a.public == b.public and a.account_key == b.account_key


# --- msgpack tokens and their non-canonical spellings ------------------------------------------


@dataclass(frozen=True)
class Token:
    """One msgpack item: where its header starts, how long header and payload are, its value."""

    start: int
    head: int
    body: int
    kind: str
    value: int
    path: tuple[int, ...]


_FIXED: Final = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8, 0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}
_LENGTHS: Final = {
    0xC4: ("bin", 1),
    0xC5: ("bin", 2),
    0xC6: ("bin", 4),
    0xD9: ("str", 1),
    0xDA: ("str", 2),
    0xDB: ("str", 4),
    0xDC: ("array", 2),
    0xDD: ("array", 4),
    0xDE: ("map", 2),
    0xDF: ("map", 4),
}


def msgpack_tokens(data: bytes) -> list[Token]:
    """Every item of a msgpack document (the subset envelopes use), in order."""
    tokens: list[Token] = []

    def item(pos: int, path: tuple[int, ...]) -> int:
        marker = data[pos]
        kind, value, head, body = "", 0, 1, 0
        if marker <= 0x7F or marker >= 0xE0:
            kind, value = "int", marker if marker <= 0x7F else marker - 0x100
        elif marker in (0xC0, 0xC2, 0xC3):
            kind = "nil" if marker == 0xC0 else "bool"
        elif marker in _FIXED:
            size = _FIXED[marker]
            kind, head = "int", 1 + size
            value = int.from_bytes(data[pos + 1 : pos + head], "big", signed=marker >= 0xD0)
        elif 0xA0 <= marker <= 0xBF:
            kind, value = "str", marker & 0x1F
        elif 0x90 <= marker <= 0x9F:
            kind, value = "array", marker & 0x0F
        elif 0x80 <= marker <= 0x8F:
            kind, value = "map", marker & 0x0F
        elif marker in _LENGTHS:
            kind, size = _LENGTHS[marker]
            head = 1 + size
            value = int.from_bytes(data[pos + 1 : pos + head], "big")
        else:
            raise AssertionError(f"marker {marker:#x} not used by envelopes")
        if kind in ("bin", "str"):
            body = value
        tokens.append(Token(pos, head, body, kind, value, path))
        pos += head + body
        children = value if kind == "array" else 2 * value if kind == "map" else 0
        for index in range(children):
            pos = item(pos, (*path, index))
        return pos

    end = item(0, ())
    assert end == len(data)
    return tokens


def _int_heads(value: int) -> list[bytes]:
    heads = []
    if 0 <= value <= 0x7F or -32 <= value < 0:
        heads.append(struct.pack(">b", value) if value < 0 else bytes((value,)))
    for marker, fmt, low, high in (
        (0xCC, ">B", 0, 2**8),
        (0xCD, ">H", 0, 2**16),
        (0xCE, ">I", 0, 2**32),
        (0xCF, ">Q", 0, 2**64),
        (0xD0, ">b", -(2**7), 2**7),
        (0xD1, ">h", -(2**15), 2**15),
        (0xD2, ">i", -(2**31), 2**31),
        (0xD3, ">q", -(2**63), 2**63),
    ):
        if low <= value < high:
            heads.append(bytes((marker,)) + struct.pack(fmt, value))
    return heads


def _length_heads(kind: str, length: int) -> list[bytes]:
    fix = {"str": (0xA0, 32), "array": (0x90, 16), "map": (0x80, 16)}
    wide = {
        "bin": (0xC4, 0xC5, 0xC6),
        "str": (0xD9, 0xDA, 0xDB),
        "array": (None, 0xDC, 0xDD),
        "map": (None, 0xDE, 0xDF),
    }
    heads = []
    if kind in fix and length < fix[kind][1]:
        heads.append(bytes((fix[kind][0] | length,)))
    for marker, fmt, limit in zip(
        wide[kind], (">B", ">H", ">I"), (2**8, 2**16, 2**32), strict=True
    ):
        if marker is not None and length < limit:
            heads.append(bytes((marker,)) + struct.pack(fmt, length))
    return heads


def non_canonical_variants(data: bytes) -> Iterator[tuple[Token, bytes]]:
    """Every re-spelling of one item of ``data`` with another header for the same value."""
    for token in msgpack_tokens(data):
        current = data[token.start : token.start + token.head]
        if token.kind == "int":
            heads = _int_heads(token.value)
        elif token.kind in ("bin", "str", "array", "map"):
            heads = _length_heads(token.kind, token.value)
        else:
            heads = []
        for head in heads:
            if head != current:
                yield token, data[: token.start] + head + data[token.start + token.head :]


def test_msgpack_tokens_and_variants_match_msgspec() -> None:
    value = [1, 200, 70000, -5, b"x" * 20, "1.2.3", None, [2**40, b""], True]
    data = msgspec.msgpack.encode(value)
    tokens = msgpack_tokens(data)
    assert [t.kind for t in tokens] == [
        "array",
        *("int",) * 4,
        "bin",
        "str",
        "nil",
        "array",
        "int",
        "bin",
        "bool",
    ]
    variants = list(non_canonical_variants(data))
    assert len(variants) > 20
    for _, variant in variants:
        assert variant != data
        assert msgspec.msgpack.decode(variant) == value
        # msgspec itself always writes the shortest form.
        assert msgspec.msgpack.encode(msgspec.msgpack.decode(variant)) == data


# --- streams -----------------------------------------------------------------------------------


def _seal_stream(key: c.StudyKey, file_id: bytes, plaintext: bytes, sizes: Sequence[int]) -> bytes:
    sealer = c.StreamSealer(key, file_id, LOG2)
    out = list(sealer.seal(_split(plaintext, sizes)))
    assert out[0] == sealer.header
    return b"".join(out)


def _check_stream_round_trip(
    key: c.StudyKey,
    file_id: bytes,
    plaintext: bytes,
    seal_sizes: Sequence[int],
    open_sizes: Sequence[int],
) -> None:
    sealed = _seal_stream(key, file_id, plaintext, seal_sizes)
    assert len(sealed) == c.ciphertext_size(len(plaintext), LOG2)
    assert b"".join(c.open_stream(key, file_id, _split(sealed, open_sizes))) == plaintext
    opener = c.StreamOpener(key, file_id, sealed[:HEADER_BYTES])
    body = sealed[HEADER_BYTES:]
    assert b"".join(opener.open(_split(body, open_sizes))) == plaintext
    # Against the manifest entry the uploader signed: size and hash checked at the end.
    entry = c.ManifestEntry(
        file_id, len(plaintext), len(sealed), c.ciphertext_hash(sealed), "1.2", "1.2.3"
    )
    assert b"".join(c.open_instance(key, entry, _split(sealed, open_sizes))) == plaintext
    # Random access: every chunk on its own, as after an HTTP Range read.
    count = opener.chunk_count(len(sealed))
    assert count == max(1, -(-len(plaintext) // CHUNK))
    for index in range(count):
        offset, length = opener.chunk_span(index, len(sealed))
        chunk = opener.open_chunk(index, sealed[offset : offset + length], last=index == count - 1)
        assert chunk == plaintext[index * CHUNK : (index + 1) * CHUNK]


@pytest.mark.parametrize("size", BOUNDARY_SIZES)
@settings(max_examples=8, deadline=None)
@given(key=study_keys, file_id=ids16, seal_sizes=piece_sizes, open_sizes=piece_sizes)
def test_stream_round_trip_at_chunk_boundaries(
    size: int,
    key: c.StudyKey,
    file_id: bytes,
    seal_sizes: list[int],
    open_sizes: list[int],
) -> None:
    _check_stream_round_trip(key, file_id, _plaintext(size), seal_sizes, open_sizes)


@settings(max_examples=40, deadline=None)
@given(
    size=st.integers(0, 6 * CHUNK),
    seed=st.integers(0, 2**16),
    key=study_keys,
    file_id=ids16,
    seal_sizes=piece_sizes,
    open_sizes=piece_sizes,
)
def test_stream_round_trip_random_sizes_and_pieces(
    size: int,
    seed: int,
    key: c.StudyKey,
    file_id: bytes,
    seal_sizes: list[int],
    open_sizes: list[int],
) -> None:
    _check_stream_round_trip(key, file_id, _plaintext(size, seed), seal_sizes, open_sizes)


@pytest.mark.parametrize("size", BOUNDARY_SIZES)
def test_stream_round_trip_in_whole_chunk_pieces(size: int) -> None:
    """Pieces that are exactly one chunk (plaintext) or one sealed chunk (after the header)."""
    key, file_id = c.StudyKey(bytes(range(32))), bytes(range(16))
    plaintext = _plaintext(size)
    sealed = _seal_stream(key, file_id, plaintext, [CHUNK])
    assert sealed == _seal_stream(key, file_id, plaintext, [size or 1])
    header, body = sealed[:HEADER_BYTES], sealed[HEADER_BYTES:]
    aligned = [header, *_split(body, [SEALED_CHUNK])]
    assert b"".join(c.open_stream(key, file_id, aligned)) == plaintext
    opener = c.StreamOpener(key, file_id, header)
    assert b"".join(opener.open(_split(body, [SEALED_CHUNK]))) == plaintext
    assert b"".join(opener.open(_split(body, [2 * SEALED_CHUNK, 0]))) == plaintext
    # The last whole chunk cut off at a chunk boundary is still seen as a truncation.
    if len(body) > SEALED_CHUNK:
        cut = body[: (len(body) - 1) // SEALED_CHUNK * SEALED_CHUNK]
        with pytest.raises(c.TruncatedStream):
            b"".join(opener.open(_split(cut, [SEALED_CHUNK])))


@pytest.mark.parametrize("size", [1, CHUNK + 3])
def test_stream_open_instance_refuses_a_stream_the_entry_does_not_describe(size: int) -> None:
    key, file_id = c.StudyKey(bytes(range(32))), bytes(range(16))
    sealed = _seal_stream(key, file_id, _plaintext(size), [CHUNK])
    # Anyone with the study key can seal another valid stream under the same file id.
    other = _seal_stream(key, file_id, _plaintext(size, seed=1), [CHUNK])
    assert other != sealed
    assert len(other) == len(sealed)
    entry = c.ManifestEntry(file_id, size, len(sealed), c.ciphertext_hash(sealed), "1", "1.1")
    assert b"".join(c.open_instance(key, entry, [sealed])) == _plaintext(size)
    assert b"".join(c.open_stream(key, file_id, [other])) == _plaintext(size, seed=1)
    with pytest.raises(c.AuthenticationFailed):
        b"".join(c.open_instance(key, entry, [other]))
    for wrong in (
        msgspec.structs.replace(entry, ciphertext_size=len(sealed) + 1),
        msgspec.structs.replace(entry, ciphertext_hash=bytes(32)),
    ):
        with pytest.raises(c.AuthenticationFailed):
            b"".join(c.open_instance(key, wrong, [sealed]))
    # A hash computed by the caller (WebCrypto in the browser) is held to the same standard.
    hashed = c.ciphertext_hash(sealed)
    assert b"".join(c.open_instance(key, entry, [sealed], ciphertext_sha256=hashed)) == (
        _plaintext(size)
    )
    for claimed in (c.ciphertext_hash(other), bytes(32)):
        with pytest.raises(c.AuthenticationFailed):
            b"".join(c.open_instance(key, entry, [sealed], ciphertext_sha256=claimed))


def test_stream_split_helper_covers_data_and_empty_pieces() -> None:
    data = bytes(range(100))
    assert b"".join(_split(data, [0, 7, 0, 30])) == data
    assert b"".join(_split(data, [0])) == data
    assert list(_split(b"", [5])) == [b""]
    assert b"" in list(_split(data, [0, 50]))


def _expected_stream_flip(byte: int, bit: int) -> type[c.CryptoError]:
    """The error class a flip of ``bit`` in byte ``byte`` of a sealed stream must raise."""
    if byte < 4 or byte == 7:  # magic, reserved byte
        return c.MalformedEnvelope
    if byte in (4, 5):  # version, algorithm
        return c.UnsupportedVersion
    if byte == 6:  # chunk size: out of range is malformed, another valid size breaks the AD
        flipped = LOG2 ^ (1 << bit)
        return c.AuthenticationFailed if 12 <= flipped <= 24 else c.MalformedEnvelope
    return c.AuthenticationFailed  # file id (checked against the manifest), chunks


def _stream_error(key: c.StudyKey, file_id: bytes, data: bytes) -> type[c.CryptoError]:
    try:
        b"".join(c.open_stream(key, file_id, [data]))
    except c.CryptoError as error:
        return type(error)
    pytest.fail("a stream with a flipped bit opened")


@pytest.mark.parametrize("size", [0, 1, CHUNK + 30])
def test_stream_every_bit_flip_fails_at_the_expected_layer(size: int) -> None:
    key, file_id = c.StudyKey(bytes(range(32))), bytes(range(100, 116))
    plaintext = _plaintext(size)
    sealed = _seal_stream(key, file_id, plaintext, [size or 1])
    mismatches = []
    for byte in range(len(sealed)):
        for bit in range(8):
            flipped = bytearray(sealed)
            flipped[byte] ^= 1 << bit
            got = _stream_error(key, file_id, bytes(flipped))
            if got is not _expected_stream_flip(byte, bit):
                mismatches.append((byte, bit, got.__name__))
    assert mismatches == []


@settings(max_examples=60, deadline=None)
@given(data=st.data(), size=st.integers(CHUNK + 1, 4 * CHUNK))
def test_stream_bit_flip_in_a_chunk_fails_only_that_chunk(data: st.DataObject, size: int) -> None:
    key, file_id = c.StudyKey(bytes(range(32))), bytes(16)
    plaintext = _plaintext(size)
    sealed = _seal_stream(key, file_id, plaintext, [CHUNK])
    byte = data.draw(st.integers(HEADER_BYTES, len(sealed) - 1), label="byte")
    bit = data.draw(st.integers(0, 7), label="bit")
    flipped = bytearray(sealed)
    flipped[byte] ^= 1 << bit
    opener = c.StreamOpener(key, file_id, bytes(flipped[:HEADER_BYTES]))
    count = opener.chunk_count(len(flipped))
    hit = (byte - HEADER_BYTES) // SEALED_CHUNK
    for index in range(count):
        offset, length = opener.chunk_span(index, len(flipped))
        chunk = bytes(flipped[offset : offset + length])
        if index == hit:
            with pytest.raises(c.AuthenticationFailed):
                opener.open_chunk(index, chunk, last=index == count - 1)
        else:
            opened = opener.open_chunk(index, chunk, last=index == count - 1)
            assert opened == plaintext[index * CHUNK : (index + 1) * CHUNK]


@pytest.mark.parametrize("size", [0, CHUNK, 2 * CHUNK + 9])
def test_stream_every_truncation_fails(size: int) -> None:
    key, file_id = c.StudyKey(bytes(32)), bytes(16)
    sealed = _seal_stream(key, file_id, _plaintext(size), [CHUNK])
    boundaries = {HEADER_BYTES + k * SEALED_CHUNK for k in range(len(sealed) // SEALED_CHUNK + 1)}
    for cut in range(len(sealed)):
        with pytest.raises((c.TruncatedStream, c.AuthenticationFailed)) as raised:
            b"".join(c.open_stream(key, file_id, [sealed[:cut]]))
        if cut < HEADER_BYTES + TAG_BYTES or cut in boundaries:
            assert raised.type is c.TruncatedStream, cut


# --- metadata, study-key wrap, manifest --------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(key=study_keys, study_id=ids16, plaintext=st.binary(max_size=3000))
def test_metadata_round_trip(key: c.StudyKey, study_id: bytes, plaintext: bytes) -> None:
    sealed = c.seal_metadata(key, study_id, plaintext)
    assert c.open_metadata(key, study_id, sealed) == plaintext
    assert _reencode(sealed, envelope.MetadataEnvelope, Kind.METADATA) == sealed


@settings(max_examples=50, deadline=None)
@given(seed=account_seeds, study_id=ids16, key=study_keys)
def test_study_key_wrap_round_trip(seed: bytes, study_id: bytes, key: c.StudyKey) -> None:
    owner = _account(seed)
    wrapped = c.wrap_study_key(owner.account_key, study_id, key)
    assert c.unwrap_study_key(owner.account_key, study_id, wrapped) == key
    assert _reencode(wrapped, envelope.StudyKeyWrapEnvelope, Kind.STUDY_KEY_WRAP) == wrapped


dicom_uids: Final = st.text(alphabet="0123456789.", max_size=64)
manifest_entries: Final = st.builds(
    c.ManifestEntry,
    file_id=ids16,
    plaintext_size=st.integers(0, 2**63 - 1),
    ciphertext_size=st.integers(0, 2**63 - 1),
    ciphertext_hash=key_bytes,
    series_uid=dicom_uids,
    instance_uid=dicom_uids,
)


@settings(max_examples=40, deadline=None)
@given(
    key=study_keys,
    study_id=ids16,
    version=st.integers(1, 2**32 - 1),
    entries=st.lists(manifest_entries, max_size=8),
    seed=account_seeds,
)
def test_manifest_round_trip(
    key: c.StudyKey,
    study_id: bytes,
    version: int,
    entries: list[c.ManifestEntry],
    seed: bytes,
) -> None:
    signer = _account(seed)
    sealed = c.seal_manifest(key, study_id, version, entries, signer)
    manifest = c.open_manifest(key, study_id, sealed, {signer.public.ed25519})
    assert manifest.entries == tuple(entries)
    assert manifest.manifest_version == version
    assert manifest.signer == signer.public.ed25519
    assert manifest.study_id == study_id
    assert _reencode(sealed, envelope.ManifestEnvelope, Kind.MANIFEST) == sealed


# --- share notes -------------------------------------------------------------------------------


@st.composite
def note_texts(draw: st.DrawFn) -> str:
    """Any text a note may hold: short mixed text, or one unit repeated up to the byte limit."""
    if draw(st.booleans()):
        return draw(st.text(min_size=1, max_size=300))
    unit = draw(st.text(min_size=1, max_size=4))
    text = unit * draw(st.integers(1, c.MAX_NOTE_BYTES // len(unit.encode("utf-8"))))
    # ASCII padding lets the sizes reach the limit exactly, whatever the unit's width.
    return text + "a" * draw(st.integers(0, c.MAX_NOTE_BYTES - len(text.encode("utf-8"))))


def _seal_note_plaintext(
    key: c.StudyKey, study_id: bytes, share_id: bytes, plaintext: bytes
) -> bytes:
    """A share note around any plaintext, past the writer's checks on the text."""
    nonce, ciphertext = study._seal(
        note._note_key(key, share_id), plaintext, note._note_ad(study_id, share_id), _rng("note")
    )
    return _canonical.encode(
        envelope.ShareNoteEnvelope(
            kind=Kind.SHARE_NOTE,
            version=1,
            study_id=study_id,
            share_id=share_id,
            nonce=nonce,
            ciphertext=ciphertext,
        )
    )


@settings(max_examples=80, deadline=None)
@given(key=study_keys, study_id=ids16, share_id=ids16, text=note_texts())
def test_share_note_round_trip(
    key: c.StudyKey, study_id: bytes, share_id: bytes, text: str
) -> None:
    assert 1 <= len(text.encode("utf-8")) <= c.MAX_NOTE_BYTES
    sealed = c.seal_note(key, study_id, share_id, text)
    assert c.open_note(key, study_id, share_id, sealed) == text
    assert _reencode(sealed, envelope.ShareNoteEnvelope, Kind.SHARE_NOTE) == sealed


@settings(max_examples=200, deadline=None)
@given(data=st.data(), text=note_texts())
def test_share_note_any_single_byte_change_fails(data: st.DataObject, text: str) -> None:
    key, study_id, share_id = c.StudyKey(bytes(range(32))), bytes(16), bytes(range(16))
    sealed = c.seal_note(key, study_id, share_id, text, _rng("note-byte"))
    index = data.draw(st.integers(0, len(sealed) - 1), label="index")
    value = data.draw(st.integers(0, 255).filter(lambda v: v != sealed[index]), label="value")
    changed = sealed[:index] + bytes((value,)) + sealed[index + 1 :]
    with pytest.raises(c.CryptoError):
        c.open_note(key, study_id, share_id, changed)


def test_share_note_every_single_byte_change_fails() -> None:
    key, study_id, share_id = c.StudyKey(bytes(range(32))), bytes(16), bytes(range(16))
    sealed = c.seal_note(key, study_id, share_id, "Bitte ansehen \u2013 danke.", _rng("note-all"))
    accepted = []
    for index in range(len(sealed)):
        for value in range(256):
            if value == sealed[index]:
                continue
            changed = sealed[:index] + bytes((value,)) + sealed[index + 1 :]
            try:
                c.open_note(key, study_id, share_id, changed)
            except c.CryptoError:
                continue
            accepted.append((index, value))
    assert accepted == []


def test_share_note_opens_only_for_its_study_key_study_and_share() -> None:
    key, study_id, share_id = c.StudyKey(bytes(range(32))), bytes(16), bytes(range(16))
    other_share = bytes(range(1, 17))
    sealed = c.seal_note(key, study_id, share_id, "note", _rng("note-bound"))
    assert c.open_note(key, study_id, share_id, sealed) == "note"
    # Each share's note has a key of its own.
    assert note._note_key(key, share_id) != note._note_key(key, other_share)
    relabelled = _canonical.encode(
        msgspec.structs.replace(
            _canonical.decode(
                sealed, msgspec.msgpack.Decoder(envelope.ShareNoteEnvelope), Kind.SHARE_NOTE
            ),
            share_id=other_share,
        )
    )
    wrong: list[tuple[c.StudyKey, bytes, bytes, bytes]] = [
        (key, study_id, other_share, sealed),
        (key, bytes(range(16)), share_id, sealed),
        (c.StudyKey(bytes(32)), study_id, share_id, sealed),
        # The server moves the note to another share, ids and all: the key and the AD differ.
        (key, study_id, other_share, relabelled),
    ]
    for args in wrong:
        with pytest.raises(c.AuthenticationFailed):
            c.open_note(*args)


def test_share_note_reader_bounds_the_ciphertext_before_decrypting() -> None:
    key, study_id, share_id = c.StudyKey(bytes(32)), bytes(16), bytes(16)

    def with_ciphertext(size: int) -> bytes:
        return _canonical.encode(
            envelope.ShareNoteEnvelope(
                kind=Kind.SHARE_NOTE,
                version=1,
                study_id=study_id,
                share_id=share_id,
                nonce=bytes(24),
                ciphertext=bytes(size),
            )
        )

    for size in (16, c.MAX_NOTE_BYTES + 16):
        with pytest.raises(c.AuthenticationFailed):
            c.open_note(key, study_id, share_id, with_ciphertext(size))
    for size in (0, 15, c.MAX_NOTE_BYTES + 17):
        with pytest.raises(c.MalformedEnvelope):
            c.open_note(key, study_id, share_id, with_ciphertext(size))


@pytest.mark.parametrize(
    "plaintext",
    [b"L\xe4sion", b"\xc3\xa4\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xff"],
    ids=["latin-1", "truncated", "overlong", "surrogate", "above-u+10ffff", "ff"],
)
def test_share_note_authentic_but_not_utf8_is_malformed(plaintext: bytes) -> None:
    key, study_id, share_id = c.StudyKey(bytes(32)), bytes(16), bytes(16)
    valid = _seal_note_plaintext(key, study_id, share_id, "L\u00e4sion".encode())
    assert c.open_note(key, study_id, share_id, valid) == "L\u00e4sion"
    with pytest.raises(c.MalformedEnvelope):
        c.open_note(
            key, study_id, share_id, _seal_note_plaintext(key, study_id, share_id, plaintext)
        )


def test_share_note_empty_plaintext_opens_though_no_writer_seals_one() -> None:
    key, study_id, share_id = c.StudyKey(bytes(32)), bytes(16), bytes(16)
    assert (
        c.open_note(key, study_id, share_id, _seal_note_plaintext(key, study_id, share_id, b""))
        == ""
    )


# --- grants and links --------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    granter_seed=account_seeds,
    recipient_seed=account_seeds,
    study_id=ids16,
    key=study_keys,
    permission=permissions,
    expires_at=expiries,
)
def test_grant_round_trip(
    granter_seed: bytes,
    recipient_seed: bytes,
    study_id: bytes,
    key: c.StudyKey,
    permission: int,
    expires_at: int,
) -> None:
    granter, recipient = _account(granter_seed), _account(b"r" + recipient_seed)
    grant = c.seal_grant(granter, recipient.public, study_id, key, permission, expires_at)
    opened = c.open_grant(grant, recipient)
    assert opened.study_key == key
    assert (opened.study_id, opened.permission, opened.expires_at, opened.granter) == (
        study_id,
        permission,
        expires_at,
        granter.public.ed25519,
    )
    info = c.grant_info(grant)
    assert (info.recipient, info.granter) == (recipient.public.x25519, granter.public.ed25519)
    assert _canonical.encode(info) == grant


def _check_link_round_trip(
    secret: bytes,
    password: str | None,
    link_id: bytes,
    study_id: bytes,
    key: c.StudyKey,
    permission: int,
    expires_at: int,
) -> None:
    creator = _account(b"creator")
    access = c.link_access(c.LinkSecret(secret), password)
    sealed = c.seal_link(creator, access, link_id, study_id, key, permission, expires_at)
    # The recipient derives the access again from the fragment alone (and the password).
    fragment = c.encode_fragment(c.LinkSecret(secret), password_required=password is not None)
    parsed, required = c.parse_fragment(fragment)
    again = c.link_access(parsed, password if required else None)
    assert again.access_key == access.access_key
    assert again.verifier == c.link_verifier(access.access_key)
    opened = c.open_link(sealed, link_id, again)
    assert opened.study_key == key
    assert (opened.study_id, opened.permission, opened.expires_at, opened.creator) == (
        study_id,
        permission,
        expires_at,
        creator.public.ed25519,
    )
    assert _reencode(sealed, envelope.LinkEnvelope, Kind.LINK) == sealed
    info = c.link_info(sealed)
    assert (info.link_id, info.creator) == (link_id, creator.public.ed25519)
    assert _canonical.encode(info) == sealed


@settings(max_examples=40, deadline=None)
@given(
    secret=key_bytes,
    link_id=ids16,
    study_id=ids16,
    key=study_keys,
    permission=permissions,
    expires_at=expiries,
)
def test_link_round_trip_without_password(
    secret: bytes,
    link_id: bytes,
    study_id: bytes,
    key: c.StudyKey,
    permission: int,
    expires_at: int,
) -> None:
    _check_link_round_trip(secret, None, link_id, study_id, key, permission, expires_at)


# Link passwords use the fixed v1 Argon2id cost (64 MiB, t=3): few examples.
@settings(max_examples=3, deadline=None)
@given(
    secret=key_bytes,
    password=st.text(min_size=1, max_size=24),
    link_id=ids16,
    study_id=ids16,
    key=study_keys,
    permission=permissions,
    expires_at=expiries,
)
def test_link_round_trip_with_password(
    secret: bytes,
    password: str,
    link_id: bytes,
    study_id: bytes,
    key: c.StudyKey,
    permission: int,
    expires_at: int,
) -> None:
    _check_link_round_trip(secret, password, link_id, study_id, key, permission, expires_at)


def test_link_password_changes_every_derived_key() -> None:
    secret = c.LinkSecret(bytes(range(32)))
    plain = c.link_access(secret, None)
    locked = _password_link_access(bytes(range(32)))
    assert locked.access_key != plain.access_key
    assert locked._wrap_key != plain._wrap_key
    sealed = c.seal_link(
        _account(b"creator"), locked, bytes(16), bytes(16), c.StudyKey(bytes(32)), 1, 0
    )
    with pytest.raises(c.AuthenticationFailed):
        c.open_link(sealed, bytes(16), plain)


@settings(max_examples=200, deadline=None)
@given(secret=key_bytes, password_required=st.booleans(), hashed=st.booleans())
def test_link_fragment_round_trip(secret: bytes, password_required: bool, hashed: bool) -> None:
    fragment = c.encode_fragment(c.LinkSecret(secret), password_required=password_required)
    assert len(fragment) == 46
    assert set(fragment) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    parsed, required = c.parse_fragment("#" + fragment if hashed else fragment)
    assert parsed == c.LinkSecret(secret)
    assert required is password_required
    assert c.encode_fragment(parsed, password_required=required) == fragment


# --- accounts, slots, public keys --------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(seed=account_seeds)
def test_public_keys_round_trip(seed: bytes) -> None:
    keys = _account(seed)
    opened = c.open_public_keys(keys.public.encoded)
    assert opened == keys.public
    assert (opened.x25519, opened.ed25519) == (keys.public.x25519, keys.public.ed25519)
    assert c.fingerprint(opened) == c.fingerprint(keys.public)
    assert _reencode(keys.public.encoded, envelope.PublicKeysEnvelope, Kind.PUBLIC_KEYS) == (
        keys.public.encoded
    )


@settings(max_examples=25, deadline=None)
@given(seed=st.binary(min_size=1, max_size=8), password=st.text(min_size=1, max_size=30))
def test_password_slot_round_trip(seed: bytes, password: str) -> None:
    with insecure_kdf_floor_for_tests():
        kdf = c.new_kdf_params(SeededRandom(b"kdf" + seed), opslimit=1, memlimit_kib=8)
        new = c.create_account(password, SeededRandom(seed), kdf=kdf)
        keys, password_keys = c.unlock_with_password(password, new.password_slot)
    assert _same_account(keys, new.keys)
    assert password_keys.auth_key == new.password_keys.auth_key
    assert c.open_slot(new.password_slot, new.password_keys.kek).public == new.keys.public
    assert _canonical.encode(c.slot_info(new.password_slot)) == new.password_slot


@settings(max_examples=40, deadline=None)
@given(seed=account_seeds, secret=key_bytes, passkey=st.booleans())
def test_secret_slot_round_trip(seed: bytes, secret: bytes, passkey: bool) -> None:
    keys = _account(seed)
    unlock: c.RecoveryKey | c.PasskeyPrfOutput = (
        c.PasskeyPrfOutput(secret) if passkey else c.RecoveryKey(secret)
    )
    slot = c.seal_slot(keys, unlock)
    assert _same_account(c.open_slot(slot, unlock), keys)
    assert _same_account(c.unlock_with_secret([slot], unlock), keys)
    assert _canonical.encode(c.slot_info(slot)) == slot


# --- recovery key text and file ----------------------------------------------------------------

CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


@settings(max_examples=200, deadline=None)
@given(material=key_bytes)
def test_recovery_text_round_trip(material: bytes) -> None:
    key = c.RecoveryKey(material)
    text = c.recovery_text(key)
    groups = text.split("-")
    assert len(groups) == 8
    assert all(len(g) == 8 and set(g) <= set(CROCKFORD) for g in groups)
    parsed = c.parse_recovery_text(text)
    assert parsed == key
    assert c.recovery_text(parsed) == text


@st.composite
def lenient_spellings(draw: st.DrawFn, text: str) -> str:
    """``text`` as a person might type it: any case, O for 0, I or L for 1, other separators."""
    out = [draw(st.sampled_from(["", " ", "\n", "  "]))]
    for index, ch in enumerate(text):
        if ch == "-":
            out.append(draw(st.sampled_from(["-", " ", "", "\t", " - ", "\r\n", "--"])))
            continue
        if ch == "0":
            ch = draw(st.sampled_from(["0", "O", "o"]))
        elif ch == "1":
            ch = draw(st.sampled_from(["1", "I", "i", "L", "l"]))
        elif ch.isalpha() and draw(st.booleans()):
            ch = ch.lower()
        out.append(ch)
        if index % 8 == 3 and draw(st.booleans()):
            out.append(draw(st.sampled_from([" ", "-"])))
    out.append(draw(st.sampled_from(["", " ", "\n"])))
    return "".join(out)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), material=key_bytes)
def test_recovery_text_lenient_input_parses_to_the_same_key(
    data: st.DataObject, material: bytes
) -> None:
    key = c.RecoveryKey(material)
    typed = data.draw(lenient_spellings(c.recovery_text(key)), label="typed")
    parsed = c.parse_recovery_text(typed)
    assert parsed == key
    assert c.recovery_text(parsed) == c.recovery_text(key)


@settings(max_examples=100, deadline=None)
@given(material=key_bytes, crlf=st.booleans())
def test_recovery_key_file_round_trip(material: bytes, crlf: bool) -> None:
    key = c.RecoveryKey(material)
    key_file = c.recovery_key_file(key)
    assert c.format_key_uid(key).encode() in key_file
    stored = key_file.replace(b"\n", b"\r\n") if crlf else key_file
    parsed = c.parse_key_file(stored)
    assert parsed == key
    assert c.recovery_key_file(parsed) == key_file
    assert c.parse_recovery_text(c.recovery_text(parsed)) == key


# --- one encoding per value --------------------------------------------------------------------


def _type_strategy(info: msgspec.inspect.Type) -> st.SearchStrategy[Any]:
    """Values of a wire type, within its declared constraints."""
    if isinstance(info, msgspec.inspect.IntType):
        low = info.ge if info.ge is not None else -(2**63)
        high = info.le if info.le is not None else 2**64 - 1
        return st.integers(low, high)
    if isinstance(info, msgspec.inspect.BytesType):
        low = info.min_length or 0
        high = info.max_length if info.max_length is not None else low + 80
        return st.binary(min_size=low, max_size=min(high, 300))
    if isinstance(info, msgspec.inspect.StrType):
        return st.text(alphabet="0123456789.", max_size=info.max_length or 64)
    if isinstance(info, msgspec.inspect.NoneType):
        return st.none()
    if isinstance(info, msgspec.inspect.UnionType):
        return st.one_of(*(_type_strategy(t) for t in info.types))
    if isinstance(info, msgspec.inspect.ListType):
        return st.lists(_type_strategy(info.item_type), max_size=3)
    if isinstance(info, msgspec.inspect.StructType):
        return _struct_strategy(info)
    raise AssertionError(f"no strategy for {info!r}")


def _struct_strategy(
    info: msgspec.inspect.StructType, fixed: dict[str, int] | None = None
) -> st.SearchStrategy[Any]:
    fields: dict[str, st.SearchStrategy[Any]] = {
        f.name: _type_strategy(f.type) for f in info.fields
    }
    fields.update({name: st.just(value) for name, value in (fixed or {}).items()})
    return st.builds(info.cls, **fields)


WIRE_TYPES: Final[dict[str, tuple[type[envelope._Envelope], int]]] = {
    "public_keys": (envelope.PublicKeysEnvelope, Kind.PUBLIC_KEYS),
    "key_slot": (envelope.KeySlotEnvelope, Kind.KEY_SLOT),
    "account_secrets": (envelope.AccountSecretsPlain, Kind.ACCOUNT_SECRETS),
    "study_key_wrap": (envelope.StudyKeyWrapEnvelope, Kind.STUDY_KEY_WRAP),
    "metadata": (envelope.MetadataEnvelope, Kind.METADATA),
    "manifest": (envelope.ManifestEnvelope, Kind.MANIFEST),
    "manifest_body": (envelope.ManifestBody, Kind.MANIFEST_BODY),
    "grant": (envelope.GrantEnvelope, Kind.GRANT),
    "link": (envelope.LinkEnvelope, Kind.LINK),
    "share_note": (envelope.ShareNoteEnvelope, Kind.SHARE_NOTE),
}


@pytest.mark.parametrize("name", sorted(WIRE_TYPES))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_envelope_decoder_accepts_exactly_the_canonical_encoding(
    name: str, data: st.DataObject
) -> None:
    cls, kind = WIRE_TYPES[name]
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType)
    value = data.draw(_struct_strategy(info, {"kind": kind, "version": 1}), label="value")
    encoded = _canonical.encode(value)
    decoder = msgspec.msgpack.Decoder(cls)
    decoded = _canonical.decode(encoded, decoder, kind)
    assert decoded == value
    assert _canonical.encode(decoded) == encoded
    variants = list(non_canonical_variants(encoded))
    assert variants
    _, variant = data.draw(st.sampled_from(variants), label="variant")
    assert msgspec.msgpack.decode(variant) == msgspec.msgpack.decode(encoded)
    with pytest.raises(c.MalformedEnvelope):
        _canonical.decode(variant, decoder, kind)


# --- the envelopes as sealed, and every way to flip or re-spell them ---------------------------


@dataclass(frozen=True)
class Sample:
    """A sealed envelope, the public call that opens it, and what payload flips must raise."""

    data: bytes
    open: Callable[[bytes], object]
    payload_errors: dict[tuple[int, ...], type[c.CryptoError]]


def _unlock(data: bytes) -> object:
    with insecure_kdf_floor_for_tests():
        return c.unlock_with_password(PASSWORD, data)


@functools.cache
def _samples() -> dict[str, Sample]:
    owner, other = _password_account("owner"), _account(b"recipient")
    keys = owner.keys
    study_key, study_id = c.StudyKey(bytes(range(32))), bytes(range(16))
    recovery = c.new_recovery_key(_rng("recovery"))
    passkey = c.PasskeyPrfOutput(hashlib.sha256(b"prf").digest())
    link_id, secret = bytes(range(50, 66)), bytes(range(1, 33))
    share_id = bytes(range(80, 96))
    access = c.link_access(c.LinkSecret(secret), None)
    locked = _password_link_access(secret)
    entries = [
        c.ManifestEntry(bytes(16), 10, 50, bytes(32), "1.2.3", "1.2.3.4"),
        c.ManifestEntry(bytes(range(16)), 70000, 70080, bytes(range(32)), "1.2", ""),
    ]
    uid: dict[tuple[int, ...], type[c.CryptoError]] = {(4,): c.NoMatchingKey}
    trusted = {keys.public.ed25519}
    return {
        "public_keys": Sample(keys.public.encoded, c.open_public_keys, {}),
        "password_slot": Sample(owner.password_slot, _unlock, {}),
        "password_slot_kek": Sample(
            owner.password_slot, lambda d: c.open_slot(d, owner.password_keys.kek), {}
        ),
        "recovery_slot": Sample(
            c.seal_slot(keys, recovery, _rng("r")), lambda d: c.open_slot(d, recovery), uid
        ),
        "passkey_slot": Sample(
            c.seal_slot(keys, passkey, _rng("p")), lambda d: c.open_slot(d, passkey), uid
        ),
        "study_key_wrap": Sample(
            c.wrap_study_key(keys.account_key, study_id, study_key, _rng("w")),
            lambda d: c.unwrap_study_key(keys.account_key, study_id, d),
            {},
        ),
        "metadata": Sample(
            c.seal_metadata(study_key, study_id, b'{"PatientName": "DOE^J"}', _rng("m")),
            lambda d: c.open_metadata(study_key, study_id, d),
            {},
        ),
        "manifest": Sample(
            c.seal_manifest(study_key, study_id, 300, entries, keys, _rng("mf")),
            lambda d: c.open_manifest(study_key, study_id, d, trusted),
            {},
        ),
        "grant": Sample(
            c.seal_grant(keys, other.public, study_id, study_key, 2, 1_900_000_000, _rng("g")),
            lambda d: c.open_grant(d, other),
            {},
        ),
        "grant_info": Sample(
            c.seal_grant(keys, other.public, study_id, study_key, 4, 0, _rng("gi")),
            c.grant_info,
            {},
        ),
        "share_note": Sample(
            c.seal_note(study_key, study_id, share_id, "Bitte ansehen.", _rng("n")),
            lambda d: c.open_note(study_key, study_id, share_id, d),
            {},
        ),
        "link": Sample(
            c.seal_link(keys, access, link_id, study_id, study_key, 1, 0, _rng("l")),
            lambda d: c.open_link(d, link_id, access),
            {},
        ),
        "link_info": Sample(
            c.seal_link(keys, access, link_id, study_id, study_key, 2, 7, _rng("li")),
            c.link_info,
            {},
        ),
        "link_password": Sample(
            c.seal_link(keys, locked, link_id, study_id, study_key, 3, 2**40, _rng("lp")),
            lambda d: c.open_link(d, link_id, locked),
            {},
        ),
    }


SAMPLE_NAMES: Final = (
    "public_keys",
    "password_slot",
    "password_slot_kek",
    "recovery_slot",
    "passkey_slot",
    "study_key_wrap",
    "metadata",
    "manifest",
    "grant",
    "grant_info",
    "share_note",
    "link",
    "link_info",
    "link_password",
)


def _error(sample: Sample, data: bytes) -> type[c.CryptoError]:
    try:
        sample.open(data)
    except c.CryptoError as error:
        return type(error)
    pytest.fail("an altered envelope was accepted")


def _payload_expectations(sample: Sample) -> dict[int, type[c.CryptoError]]:
    """Byte offset -> required error, for the payload bytes of every byte-string field."""
    expected: dict[int, type[c.CryptoError]] = {}
    for token in msgpack_tokens(sample.data):
        if token.kind == "bin":
            error = sample.payload_errors.get(token.path, c.AuthenticationFailed)
            start = token.start + token.head
            expected.update(dict.fromkeys(range(start, start + token.body), error))
    return expected


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_envelope_sample_opens_and_is_canonical(name: str) -> None:
    sample = _samples()[name]
    sample.open(sample.data)
    assert msgspec.msgpack.encode(msgspec.msgpack.decode(sample.data)) == sample.data


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_envelope_every_bit_flip_fails_at_the_expected_layer(name: str) -> None:
    sample = _samples()[name]
    payload = _payload_expectations(sample)
    assert len(payload) >= 48  # at least the nonce and a tag or signature are byte strings
    wrong: list[tuple[int, int, str]] = []
    for byte in range(len(sample.data)):
        for bit in range(8):
            flipped = bytearray(sample.data)
            flipped[byte] ^= 1 << bit
            got = _error(sample, bytes(flipped))
            allowed = (payload[byte],) if byte in payload else ENVELOPE_ERRORS
            if got not in allowed:
                wrong.append((byte, bit, got.__name__))
    assert wrong == []


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_envelope_non_canonical_spellings_are_malformed(name: str) -> None:
    sample = _samples()[name]
    variants = list(non_canonical_variants(sample.data))
    # Each field of every envelope has at least one wider spelling.
    assert len({token.path for token, _ in variants}) >= 6
    for _, variant in variants:
        assert msgspec.msgpack.decode(variant) == msgspec.msgpack.decode(sample.data)
        with pytest.raises(c.MalformedEnvelope):
            sample.open(variant)


def test_envelope_appended_and_missing_bytes_are_malformed() -> None:
    for name in SAMPLE_NAMES:
        sample = _samples()[name]
        for data in (sample.data + b"\x00", sample.data + b"\xc0", sample.data[:-1], b""):
            assert _error(sample, data) is c.MalformedEnvelope, name


# --- authenticated but non-canonical plaintexts ------------------------------------------------


def test_key_slot_with_non_canonical_bundle_is_malformed() -> None:
    keys = _account(b"bundle")
    recovery = c.new_recovery_key(_rng("bundle-recovery"))
    bundle = keys.seal_bundle()
    uid = c.key_uid(recovery)
    ad = account._slot_ad(c.SLOT_RECOVERY, None, uid)
    wrap = account._slot_wrap_key(recovery)._material

    def seal(plain: bytes) -> bytes:
        nonce = bytes(24)
        ciphertext = get_backend().aead_xchacha20poly1305_ietf_encrypt(plain, ad, nonce, wrap)
        return _canonical.encode(
            envelope.KeySlotEnvelope(
                kind=Kind.KEY_SLOT,
                version=1,
                slot_type=c.SLOT_RECOVERY,
                kdf=None,
                key_uid=uid,
                nonce=nonce,
                ciphertext=ciphertext,
            )
        )

    assert c.open_slot(seal(bundle), recovery).public == keys.public
    variants = list(non_canonical_variants(bundle))
    assert len(variants) >= 8
    for _, variant in variants:
        with pytest.raises(c.MalformedEnvelope):
            c.open_slot(seal(variant), recovery)


def _seal_manifest_plaintext(
    key: c.StudyKey, study_id: bytes, version: int, plaintext: bytes
) -> bytes:
    manifest_key = derive_key_bytes(key._material, _labels.MANIFEST_KEY)
    nonce, ciphertext = study._seal(
        manifest_key, plaintext, study._manifest_ad(study_id, version), _rng("inner")
    )
    return _canonical.encode(
        envelope.ManifestEnvelope(
            kind=Kind.MANIFEST,
            version=1,
            study_id=study_id,
            manifest_version=version,
            nonce=nonce,
            ciphertext=ciphertext,
        )
    )


def test_manifest_with_non_canonical_signed_body_is_malformed() -> None:
    signer = _account(b"signer")
    key, study_id = c.StudyKey(bytes(32)), bytes(range(16))
    entries = [c.ManifestEntry(bytes(16), 1, 41, bytes(32), "1.2", "1.2.3")]
    body = _canonical.encode(
        envelope.ManifestBody(
            kind=Kind.MANIFEST_BODY,
            version=1,
            study_id=study_id,
            manifest_version=7,
            signer=signer.public.ed25519,
            entries=entries,
        )
    )
    trusted = {signer.public.ed25519}

    def signed(body_bytes: bytes) -> bytes:
        signature = signer.sign(_labels.MANIFEST_SIGNATURE, body_bytes)
        return _canonical.encode(envelope.SignedManifest(body=body_bytes, signature=signature))

    good = _seal_manifest_plaintext(key, study_id, 7, signed(body))
    assert c.open_manifest(key, study_id, good, trusted).entries == tuple(entries)
    # The body re-spelled and signed as such: authentic, but not the one encoding.
    body_variants = list(non_canonical_variants(body))
    assert len(body_variants) >= 10
    for _, variant in body_variants:
        sealed = _seal_manifest_plaintext(key, study_id, 7, signed(variant))
        with pytest.raises(c.MalformedEnvelope):
            c.open_manifest(key, study_id, sealed, trusted)
    # The signed wrapper re-spelled around a canonical body.
    for _, variant in non_canonical_variants(signed(body)):
        sealed = _seal_manifest_plaintext(key, study_id, 7, variant)
        with pytest.raises(c.MalformedEnvelope):
            c.open_manifest(key, study_id, sealed, trusted)

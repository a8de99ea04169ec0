"""Bounded fuzzing of every decoder and opener that takes untrusted bytes or text.

Each one is fed random input and mutations of valid encodings (bit flips, byte edits,
insertions, deletions, truncations, extensions, splices with other formats, msgpack markers,
and random msgpack documents with the right kind and version). The only exceptions allowed out
are ``CryptoError`` subclasses: never ``TypeError``, ``ValueError``, ``IndexError``, a msgspec,
Unicode or recursion error. Where an opener authenticates its input, anything it accepts must
be exactly one of the valid encodings.

Arguments are always well typed and in range, so the documented misuse errors are not provoked.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import securepacs.crypto as c
from securepacs.crypto._random import SeededRandom
from securepacs.crypto.envelope import Kind
from securepacs.crypto.kdf import insecure_kdf_floor_for_tests
from securepacs.crypto.stream import HEADER_BYTES, TAG_BYTES
from tests.conftest import seeded_account

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

T = TypeVar("T")

EXAMPLES: Final = 400
FUZZ: Final = settings(max_examples=EXAMPLES, deadline=None)
LOG2: Final = 12
CHUNK: Final = 1 << LOG2
SEALED_CHUNK: Final = CHUNK + TAG_BYTES
PASSWORD: Final = "correct horse battery staple"
LINK_PASSWORD: Final = "tulip"
STUDY_ID: Final = bytes(range(16))
LINK_ID: Final = bytes(range(40, 56))
FILE_ID: Final = bytes(range(80, 96))
MSGPACK_MARKERS: Final = (
    *range(0x80, 0xA0, 5),
    0xA0,
    *range(0xC0, 0xE0),
    0xE0,
    0xFF,
)


def _rng(name: str) -> SeededRandom:
    return SeededRandom(hashlib.sha256(name.encode()).digest())


def _account(seed: bytes) -> c.AccountKeys:
    """An account bundle from a seed, without Argon2id (the bundle is what is under test)."""
    return seeded_account(seed)


@dataclass(frozen=True)
class Corpus:
    """Valid encodings of every format, and the keys that open them."""

    owner: c.NewAccount
    recipient: c.AccountKeys
    recovery: c.RecoveryKey
    passkey: c.PasskeyPrfOutput
    study_key: c.StudyKey
    access: c.LinkAccess
    locked_access: c.LinkAccess
    public_keys: tuple[bytes, ...]
    slots: tuple[bytes, ...]
    wrapped: tuple[bytes, ...]
    metadata: tuple[bytes, ...]
    manifests: tuple[bytes, ...]
    grants: tuple[bytes, ...]
    links: tuple[bytes, ...]
    streams: tuple[bytes, ...]
    plaintexts: tuple[bytes, ...]
    fragments: tuple[str, ...]
    recovery_texts: tuple[str, ...]
    key_files: tuple[bytes, ...]

    @property
    def everything(self) -> tuple[bytes, ...]:
        """Every binary sample, as splice material for every decoder."""
        return (
            *self.public_keys,
            *self.slots,
            *self.wrapped,
            *self.metadata,
            *self.manifests,
            *self.grants,
            *self.links,
            *self.key_files,
            *(s[: 2 * HEADER_BYTES] for s in self.streams),
        )


@functools.cache
def corpus() -> Corpus:
    with insecure_kdf_floor_for_tests():
        kdf = c.new_kdf_params(_rng("fuzz-kdf"), opslimit=1, memlimit_kib=8)
        owner = c.create_account(PASSWORD, _rng("fuzz-owner"), kdf=kdf)
    keys, recipient = owner.keys, _account(b"recipient")
    recovery = c.new_recovery_key(_rng("fuzz-recovery"))
    passkey = c.PasskeyPrfOutput(hashlib.sha256(b"fuzz-prf").digest())
    study_key = c.StudyKey(hashlib.sha256(b"fuzz-study-key").digest())
    secret = c.LinkSecret(hashlib.sha256(b"fuzz-link-secret").digest())
    access = c.link_access(secret, None)
    locked_access = c.link_access(secret, LINK_PASSWORD)
    entries = [
        c.ManifestEntry(bytes(16), 300, 340, bytes(32), "1.2.840.1", "1.2.840.1.1"),
        c.ManifestEntry(FILE_ID, 2**40, 2**40 + 64, bytes(range(32)), "", "9.9"),
    ]
    plaintexts = (b"", b"x", hashlib.shake_256(b"fuzz-stream").digest(CHUNK + 5))
    streams = tuple(
        b"".join(c.StreamSealer(study_key, FILE_ID, LOG2).seal([p])) for p in plaintexts
    )
    other_recovery = c.new_recovery_key(_rng("fuzz-other-recovery"))
    return Corpus(
        owner=owner,
        recipient=recipient,
        recovery=recovery,
        passkey=passkey,
        study_key=study_key,
        access=access,
        locked_access=locked_access,
        public_keys=(keys.public.encoded, recipient.public.encoded),
        slots=(
            owner.password_slot,
            c.seal_slot(keys, recovery, _rng("fuzz-rslot")),
            c.seal_slot(keys, passkey, _rng("fuzz-pslot")),
        ),
        wrapped=(c.wrap_study_key(keys.account_key, STUDY_ID, study_key, _rng("fuzz-wrap")),),
        metadata=(
            c.seal_metadata(study_key, STUDY_ID, b'{"StudyDate": "20240101"}', _rng("m")),
            c.seal_metadata(study_key, STUDY_ID, b"", _rng("m0")),
        ),
        manifests=(
            c.seal_manifest(study_key, STUDY_ID, 3, entries, keys, _rng("fuzz-manifest")),
            c.seal_manifest(study_key, STUDY_ID, 1, [], keys, _rng("fuzz-manifest-0")),
        ),
        grants=(
            c.seal_grant(keys, recipient.public, STUDY_ID, study_key, 2, 1_900_000_000, _rng("g")),
            c.seal_grant(keys, recipient.public, STUDY_ID, study_key, 4, 0, _rng("g2")),
        ),
        links=(
            c.seal_link(keys, access, LINK_ID, STUDY_ID, study_key, 1, 0, _rng("fuzz-link")),
            c.seal_link(keys, locked_access, LINK_ID, STUDY_ID, study_key, 3, 5, _rng("fl")),
        ),
        streams=streams,
        plaintexts=plaintexts,
        fragments=(
            c.encode_fragment(secret, password_required=False),
            "#" + c.encode_fragment(secret, password_required=True),
        ),
        recovery_texts=(
            c.recovery_text(recovery),
            c.recovery_text(other_recovery).lower().replace("-", " "),
        ),
        key_files=(
            c.recovery_key_file(recovery),
            c.recovery_key_file(other_recovery).replace(b"\n", b"\r\n"),
        ),
    )


# --- strategies --------------------------------------------------------------------------------


@st.composite
def mutated_bytes(draw: st.DrawFn, seeds: Sequence[bytes], splice: Sequence[bytes] = ()) -> bytes:
    """A valid encoding after one to four random edits."""
    data = bytearray(draw(st.sampled_from(seeds), label="seed"))
    donors = (*seeds, *splice)
    for _ in range(draw(st.integers(1, 4), label="edits")):
        op = draw(
            st.sampled_from(
                [
                    "flip",
                    "set",
                    "marker",
                    "insert",
                    "delete",
                    "truncate",
                    "extend",
                    "splice",
                    "duplicate",
                ]
            ),
            label="op",
        )
        at = draw(st.integers(0, len(data)), label="at")
        if op == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif op == "marker" and at < len(data):
            data[at] = draw(st.sampled_from(MSGPACK_MARKERS))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif op == "truncate":
            del data[at:]
        elif op == "extend":
            data += draw(st.binary(min_size=1, max_size=24))
        elif op == "splice":
            donor = draw(st.sampled_from(donors))
            data[at:] = donor[draw(st.integers(0, len(donor))) :]
        elif op == "duplicate":
            end = draw(st.integers(at, min(len(data), at + 64)))
            where = draw(st.integers(0, len(data)))
            data[where:where] = data[at:end]
    return bytes(data)


_msgpack_values: Final[st.SearchStrategy[Any]] = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**64 - 1),
        st.floats(allow_nan=False),
        st.binary(max_size=80),
        st.text(max_size=20),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=6), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=12,
)


@st.composite
def random_envelopes(draw: st.DrawFn, kind: int) -> bytes:
    """A msgpack array with the right kind and (usually) the right version, then anything."""
    version = draw(st.sampled_from([1, 1, 1, 0, 2, 2**32]))
    rest = draw(st.lists(_msgpack_values, max_size=12))
    return msgspec.msgpack.encode([kind, version, *rest])


def untrusted_bytes(seeds: Sequence[bytes], kind: int | None = None) -> st.SearchStrategy[bytes]:
    """Random bytes, random msgpack of the right kind, and mutations of valid encodings."""
    options = [
        st.binary(max_size=400),
        mutated_bytes(seeds, corpus().everything),
        mutated_bytes(seeds),
    ]
    if kind is not None:
        options.append(random_envelopes(kind))
    return st.one_of(options)


@st.composite
def mutated_text(draw: st.DrawFn, seeds: Sequence[str], alphabet: str) -> str:
    """A valid text after one to four character edits (from its alphabet or anywhere)."""
    chars = list(draw(st.sampled_from(seeds), label="seed"))
    any_char = st.one_of(st.sampled_from(alphabet), st.characters())
    for _ in range(draw(st.integers(1, 4), label="edits")):
        op = draw(st.sampled_from(["set", "insert", "delete", "truncate", "extend", "swap"]))
        at = draw(st.integers(0, len(chars)))
        if op == "set" and at < len(chars):
            chars[at] = draw(any_char)
        elif op == "insert":
            chars[at:at] = draw(st.lists(any_char, min_size=1, max_size=4))
        elif op == "delete":
            del chars[at : at + draw(st.integers(1, 8))]
        elif op == "truncate":
            del chars[at:]
        elif op == "extend":
            chars += draw(st.lists(any_char, min_size=1, max_size=8))
        elif op == "swap" and len(chars) > 1:
            other = draw(st.integers(0, len(chars) - 1))
            if at < len(chars):
                chars[at], chars[other] = chars[other], chars[at]
    return "".join(chars)


def untrusted_text(seeds: Sequence[str], alphabet: str) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=120),
        st.text(alphabet=alphabet, max_size=80),
        mutated_text(seeds, alphabet),
        # Long input, past any length limit, without a huge Hypothesis buffer.
        st.builds(lambda s, n: s * n, st.text(min_size=1, max_size=8), st.integers(100, 800)),
    )


def _pieces(data: bytes, sizes: Sequence[int]) -> Iterator[bytes]:
    offset, turn = 0, 0
    while offset < len(data):
        size = max(1, sizes[turn % len(sizes)])
        turn += 1
        yield data[offset : offset + size]
        offset += size


# --- the only-CryptoError check ----------------------------------------------------------------


def accepts(call: Callable[[], T]) -> T | None:
    """Run a decoder: its result, or None if it raised a CryptoError. Anything else propagates."""
    try:
        return call()
    except c.CryptoError:
        return None


def test_accepts_lets_only_crypto_errors_through() -> None:
    def raise_value_error() -> None:
        raise ValueError("not a CryptoError")

    def raise_malformed() -> None:
        raise c.MalformedEnvelope

    assert accepts(lambda: 5) == 5
    assert accepts(raise_malformed) is None
    with pytest.raises(ValueError, match="not a CryptoError"):
        accepts(raise_value_error)


def test_mutation_strategies_produce_altered_input() -> None:
    seeds = corpus().grants
    seen: set[bytes] = set()

    @settings(max_examples=50, deadline=None, database=None)
    @given(data=mutated_bytes(seeds, corpus().everything))
    def collect(data: bytes) -> None:
        seen.add(data)

    collect()
    assert len(seen - set(seeds)) >= 25


# --- account formats ---------------------------------------------------------------------------


@FUZZ
@given(data=untrusted_bytes(corpus().public_keys, Kind.PUBLIC_KEYS))
def test_fuzz_open_public_keys(data: bytes) -> None:
    opened = accepts(lambda: c.open_public_keys(data))
    if opened is not None:
        assert data in corpus().public_keys


@FUZZ
@given(data=untrusted_bytes(corpus().slots, Kind.KEY_SLOT))
def test_fuzz_slot_info(data: bytes) -> None:
    info = accepts(lambda: c.slot_info(data))
    if info is not None:
        assert msgspec.msgpack.encode(info) == data
        assert info.slot_type in (c.SLOT_PASSWORD, c.SLOT_RECOVERY, c.SLOT_PASSKEY_PRF)


@FUZZ
@given(data=untrusted_bytes(corpus().slots, Kind.KEY_SLOT), which=st.integers(0, 2))
def test_fuzz_open_slot(data: bytes, which: int) -> None:
    secret = (corpus().owner.password_keys.kek, corpus().recovery, corpus().passkey)[which]
    keys = accepts(lambda: c.open_slot(data, secret))
    if keys is not None:
        assert data == corpus().slots[which]
        assert keys.public == corpus().owner.keys.public


def _affordable(data: bytes) -> bool:
    """False for a slot whose (valid, authentic-looking) KDF cost would slow the fuzzer down."""
    info = accepts(lambda: c.slot_info(data))
    kdf = info.kdf if info is not None else None
    return kdf is None or (kdf.opslimit <= 4 and kdf.memlimit_kib <= 1024)


@FUZZ
@given(data=untrusted_bytes(corpus().slots, Kind.KEY_SLOT))
def test_fuzz_unlock_with_password(data: bytes) -> None:
    if not _affordable(data):
        return
    with insecure_kdf_floor_for_tests():
        unlocked = accepts(lambda: c.unlock_with_password(PASSWORD, data))
    if unlocked is not None:
        assert data == corpus().owner.password_slot


# --- study formats -----------------------------------------------------------------------------


@FUZZ
@given(data=untrusted_bytes(corpus().wrapped, Kind.STUDY_KEY_WRAP))
def test_fuzz_unwrap_study_key(data: bytes) -> None:
    account_key = corpus().owner.keys.account_key
    key = accepts(lambda: c.unwrap_study_key(account_key, STUDY_ID, data))
    if key is not None:
        assert data in corpus().wrapped
        assert key == corpus().study_key


@FUZZ
@given(data=untrusted_bytes(corpus().metadata, Kind.METADATA))
def test_fuzz_open_metadata(data: bytes) -> None:
    plain = accepts(lambda: c.open_metadata(corpus().study_key, STUDY_ID, data))
    if plain is not None:
        assert data in corpus().metadata


@FUZZ
@given(data=untrusted_bytes(corpus().manifests, Kind.MANIFEST))
def test_fuzz_open_manifest(data: bytes) -> None:
    trusted = {corpus().owner.keys.public.ed25519}
    manifest = accepts(lambda: c.open_manifest(corpus().study_key, STUDY_ID, data, trusted))
    if manifest is not None:
        assert data in corpus().manifests


# --- grants and links --------------------------------------------------------------------------


@FUZZ
@given(data=untrusted_bytes(corpus().grants, Kind.GRANT))
def test_fuzz_grant_info(data: bytes) -> None:
    info = accepts(lambda: c.grant_info(data))
    if info is not None:
        assert data in corpus().grants


@FUZZ
@given(data=untrusted_bytes(corpus().grants, Kind.GRANT))
def test_fuzz_open_grant(data: bytes) -> None:
    opened = accepts(lambda: c.open_grant(data, corpus().recipient))
    if opened is not None:
        assert data in corpus().grants
        assert opened.study_key == corpus().study_key


@FUZZ
@given(data=untrusted_bytes(corpus().links, Kind.LINK), locked=st.booleans())
def test_fuzz_open_link(data: bytes, locked: bool) -> None:
    access = corpus().locked_access if locked else corpus().access
    opened = accepts(lambda: c.open_link(data, LINK_ID, access))
    if opened is not None:
        assert data == corpus().links[locked]
        assert opened.study_key == corpus().study_key


@FUZZ
@given(data=untrusted_bytes(corpus().links, Kind.LINK))
def test_fuzz_link_info(data: bytes) -> None:
    info = accepts(lambda: c.link_info(data))
    if info is not None:
        assert data in corpus().links
        assert msgspec.msgpack.encode(info) == data


BASE64URL: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_#"


@FUZZ
@given(text=untrusted_text(corpus().fragments, BASE64URL))
def test_fuzz_parse_fragment(text: str) -> None:
    parsed = accepts(lambda: c.parse_fragment(text))
    if parsed is not None:
        secret, required = parsed
        assert c.encode_fragment(secret, password_required=required) == text.removeprefix("#")


# --- recovery key ------------------------------------------------------------------------------

RECOVERY_CHARS: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZabcdefghjkmnpqrstvwxyzOoIiLlUu -\t\r\n"


@FUZZ
@given(text=untrusted_text(corpus().recovery_texts, RECOVERY_CHARS))
def test_fuzz_parse_recovery_text(text: str) -> None:
    key = accepts(lambda: c.parse_recovery_text(text))
    if key is not None:
        assert c.parse_recovery_text(c.recovery_text(key)) == key


@st.composite
def key_file_edits(draw: st.DrawFn) -> bytes:
    """A key file whose text was edited (rather than its bytes), then encoded as UTF-8 or not."""
    files = [f.decode("utf-8") for f in corpus().key_files]
    text = draw(mutated_text(files, RECOVERY_CHARS + ":"))
    encoding = draw(st.sampled_from(["utf-8", "utf-16", "latin-1"]))
    return text.encode(encoding, "replace")


@FUZZ
@given(data=st.one_of(untrusted_bytes(corpus().key_files), key_file_edits()))
def test_fuzz_parse_key_file(data: bytes) -> None:
    key = accepts(lambda: c.parse_key_file(data))
    if key is not None:
        assert c.parse_key_file(c.recovery_key_file(key)) == key


# --- streams -----------------------------------------------------------------------------------


@FUZZ
@given(header=untrusted_bytes(tuple(s[:HEADER_BYTES] for s in corpus().streams)))
def test_fuzz_stream_opener_header(header: bytes) -> None:
    opener = accepts(lambda: c.StreamOpener(corpus().study_key, FILE_ID, header))
    if opener is not None:
        assert len(header) == HEADER_BYTES
        assert header[8:] == FILE_ID
        assert opener.chunk_size == 1 << header[6]


@FUZZ
@given(
    data=untrusted_bytes(corpus().streams),
    sizes=st.lists(
        st.one_of(st.integers(1, 3 * CHUNK), st.sampled_from([HEADER_BYTES, SEALED_CHUNK])),
        min_size=1,
        max_size=4,
    ),
)
def test_fuzz_open_stream(data: bytes, sizes: list[int]) -> None:
    def run() -> bytes:
        return b"".join(c.open_stream(corpus().study_key, FILE_ID, _pieces(data, sizes)))

    plaintext = accepts(run)
    if plaintext is not None:
        index = corpus().streams.index(data)
        assert plaintext == corpus().plaintexts[index]


def _entry(index: int) -> c.ManifestEntry:
    sealed = corpus().streams[index]
    return c.ManifestEntry(
        file_id=FILE_ID,
        plaintext_size=len(corpus().plaintexts[index]),
        ciphertext_size=len(sealed),
        ciphertext_hash=c.ciphertext_hash(sealed),
        series_uid="1.2",
        instance_uid="1.2.3",
    )


@FUZZ
@given(
    data=untrusted_bytes(corpus().streams),
    which=st.integers(0, 2),
    sizes=st.lists(st.sampled_from([1, HEADER_BYTES, 1000, SEALED_CHUNK]), min_size=1),
)
def test_fuzz_open_instance(data: bytes, which: int, sizes: list[int]) -> None:
    def run() -> bytes:
        return b"".join(c.open_instance(corpus().study_key, _entry(which), _pieces(data, sizes)))

    plaintext = accepts(run)
    if plaintext is not None:
        assert data == corpus().streams[which]
        assert plaintext == corpus().plaintexts[which]


def _valid_chunks() -> list[tuple[int, bytes, bool]]:
    """(index, sealed chunk, last) of every chunk of the sample streams."""
    chunks = []
    for sealed in corpus().streams:
        body = sealed[HEADER_BYTES:]
        count = max(1, -(-len(body) // SEALED_CHUNK))
        for index in range(count):
            piece = body[index * SEALED_CHUNK : (index + 1) * SEALED_CHUNK]
            chunks.append((index, piece, index == count - 1))
    return chunks


@FUZZ
@given(
    sealed=untrusted_bytes([chunk for _, chunk, _ in _valid_chunks()]),
    index=st.integers(0, 3),
    last=st.booleans(),
)
def test_fuzz_stream_open_chunk(sealed: bytes, index: int, last: bool) -> None:
    opener = c.StreamOpener(corpus().study_key, FILE_ID, corpus().streams[0][:HEADER_BYTES])
    plain = accepts(lambda: opener.open_chunk(index, sealed, last=last))
    if plain is not None:
        assert (index, sealed, last) in _valid_chunks()


@FUZZ
@given(total=st.one_of(st.integers(-100, 5 * SEALED_CHUNK), st.integers(-(2**70), 2**70)))
def test_fuzz_stream_chunk_span(total: int) -> None:
    opener = c.StreamOpener(corpus().study_key, FILE_ID, corpus().streams[0][:HEADER_BYTES])
    count = accepts(lambda: opener.chunk_count(total))
    if count is None:
        return
    assert count >= 1
    for index in {0, count // 2, count - 1}:
        offset, length = opener.chunk_span(index, total)
        assert offset >= HEADER_BYTES
        assert TAG_BYTES <= length <= SEALED_CHUNK
        assert offset + length <= total


# --- hostile shapes a random fuzzer rarely builds ----------------------------------------------


def _envelope_openers() -> list[tuple[str, int, Callable[[bytes], object]]]:
    k = corpus()
    trusted = {k.owner.keys.public.ed25519}
    return [
        ("open_public_keys", Kind.PUBLIC_KEYS, c.open_public_keys),
        ("slot_info", Kind.KEY_SLOT, c.slot_info),
        ("unlock_with_password", Kind.KEY_SLOT, lambda d: c.unlock_with_password(PASSWORD, d)),
        ("open_slot", Kind.KEY_SLOT, lambda d: c.open_slot(d, k.recovery)),
        ("unwrap_study_key", Kind.STUDY_KEY_WRAP,
         lambda d: c.unwrap_study_key(k.owner.keys.account_key, STUDY_ID, d)),
        ("open_metadata", Kind.METADATA, lambda d: c.open_metadata(k.study_key, STUDY_ID, d)),
        ("open_manifest", Kind.MANIFEST,
         lambda d: c.open_manifest(k.study_key, STUDY_ID, d, trusted)),
        ("grant_info", Kind.GRANT, c.grant_info),
        ("open_grant", Kind.GRANT, lambda d: c.open_grant(d, k.recipient)),
        ("link_info", Kind.LINK, c.link_info),
        ("open_link", Kind.LINK, lambda d: c.open_link(d, LINK_ID, k.access)),
    ]  # fmt: skip


def _hostile(kind: int) -> Iterator[tuple[str, bytes]]:
    head = bytes((0x93, kind, 0x01))
    # Extra trailing fields are skipped by the envelope head decoder, however deeply nested.
    for depth in (100, 5_000):
        yield f"nested-arrays-{depth}", head + b"\x91" * depth + b"\x00"
        yield f"nested-maps-{depth}", head + b"\x81\x00" * depth + b"\x00"
    yield "array32-huge", head + b"\xdd\xff\xff\xff\xff"
    yield "map32-huge", head + b"\xdf\xff\xff\xff\xff"
    yield "bin32-huge", head + b"\xc6\xff\xff\xff\xff"
    yield "str32-huge", head + b"\xdb\xff\xff\xff\xff"
    yield "top-array32-huge", b"\xdd\xff\xff\xff\xff" + bytes((kind, 1))
    yield "invalid-utf8", head + b"\xa2\xff\xfe"
    yield "ext", head + b"\xc7\x01\x05\x00"
    yield "timestamp", head + b"\xd6\xff\x00\x00\x00\x00"
    yield "float-kind", b"\x93\xcb" + bytes(8) + b"\x01\x00"
    yield "never-used-marker", head + b"\xc1"
    yield "uint64-max-kind", b"\x92\xcf" + b"\xff" * 8 + b"\x01"


def _hostile_cases() -> list[tuple[str, str, Callable[[bytes], object], bytes]]:
    return [
        (name, shape, open_, data)
        for name, kind, open_ in _envelope_openers()
        for shape, data in _hostile(kind)
    ]


@pytest.mark.parametrize(
    ("name", "shape", "open_", "data"),
    _hostile_cases(),
    ids=[f"{name}-{shape}" for name, shape, _, _ in _hostile_cases()],
)
def test_fuzz_hostile_msgpack_shape_is_malformed(
    name: str, shape: str, open_: Callable[[bytes], object], data: bytes
) -> None:
    with pytest.raises(c.MalformedEnvelope):
        open_(data)

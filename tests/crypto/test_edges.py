"""The last branches of the crypto core: backend size checks, writer checks, rare reader paths."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

import securepacs.crypto as c
from securepacs.crypto import _labels, account, study
from securepacs.crypto._backend import get_backend
from securepacs.crypto._canonical import FORMAT_VERSION, encode
from securepacs.crypto.envelope import Kind, ManifestBody, ManifestEnvelope, SignedManifest
from securepacs.crypto.kdf import KdfParams, derive_key_bytes
from securepacs.crypto.stream import StreamSealer, ciphertext_size, open_stream
from tests.conftest import seeded_account

if TYPE_CHECKING:
    from collections.abc import Iterator


def _account(name: str) -> c.AccountKeys:
    return seeded_account(name)


@pytest.mark.parametrize(
    ("size", "opslimit", "memlimit"),
    [(15, 1, 8192), (32, 0, 8192), (32, 1, 8191), (2**31, 1, 8192), (32, 1, 2**31)],
)
def test_backend_pwhash_out_of_range_raises_value_error(
    size: int, opslimit: int, memlimit: int
) -> None:
    with pytest.raises(ValueError, match="out of range"):
        get_backend().pwhash_argon2id(size, b"pw", bytes(16), opslimit, memlimit)


@pytest.mark.parametrize("length", [0, 63, 65])
def test_backend_verify_wrong_signature_length_fails_authentication(length: int) -> None:
    with pytest.raises(c.AuthenticationFailed):
        get_backend().sign_verify_detached(bytes(length), b"message", bytes(32))


def test_backend_decrypt_shorter_than_tag_fails_authentication() -> None:
    with pytest.raises(c.AuthenticationFailed):
        get_backend().aead_xchacha20poly1305_ietf_decrypt(bytes(15), b"", bytes(24), bytes(32))


def test_envelope_decoder_refuses_non_bytes() -> None:
    encoded = _account("types").public.encoded
    with pytest.raises(TypeError):
        c.open_public_keys(bytearray(encoded))  # type: ignore[arg-type]


def test_public_keys_hash_by_encoding() -> None:
    keys = _account("hash").public
    again = c.open_public_keys(keys.encoded)
    assert {keys, again} == {keys}
    assert len({keys, _account("other").public}) == 2


def test_seal_slot_short_salt_raises_value_error() -> None:
    kek = c.PasswordKek(bytes(32))
    params = KdfParams(alg=1, opslimit=3, memlimit_kib=65536, salt=bytes(15))
    with pytest.raises(ValueError, match="salt"):
        c.seal_slot(_account("salt"), kek, kdf=params)


def test_fresh_ids_and_keys_have_their_sizes_and_differ() -> None:
    assert len(c.new_link_id()) == 16
    assert len(c.new_study_id()) == 16
    assert c.new_study_id() != c.new_study_id()
    assert c.new_study_key() != c.new_study_key()


def test_parse_key_file_oversized_is_invalid_recovery_key() -> None:
    with pytest.raises(c.InvalidRecoveryKey):
        c.parse_key_file(b"SecurePACS recovery key\n" + b"x" * 5000)


def test_stream_snapshots_pieces_from_a_reused_buffer() -> None:
    key = c.StudyKey(bytes(range(32)))
    data = bytes(range(256)) * 40
    buffer = bytearray(1000)

    def refilled() -> Iterator[bytes]:
        # One buffer refilled for every piece, as a reader using readinto() would do.
        for start in range(0, len(data), 1000):
            part = data[start : start + 1000]
            buffer[: len(part)] = part
            yield memoryview(buffer)[: len(part)]  # type: ignore[misc]

    expected = b"".join(StreamSealer(key, bytes(16), chunk_log2=12).seal([data]))
    sealed = b"".join(StreamSealer(key, bytes(16), chunk_log2=12).seal(refilled()))
    assert sealed == expected
    assert b"".join(open_stream(key, bytes(16), [sealed])) == data


@pytest.mark.parametrize(("size", "log2"), [(-1, 18), (10, 11), (10, 25)])
def test_ciphertext_size_bad_arguments_raise_value_error(size: int, log2: int) -> None:
    with pytest.raises(ValueError, match="chunk_log2"):
        ciphertext_size(size, log2)


def test_manifest_body_for_another_study_fails_authentication() -> None:
    signer = _account("signer")
    study_key = c.StudyKey(bytes(range(32)))
    outer_id, inner_id = bytes(16), bytes([1]) * 16
    body = encode(
        ManifestBody(
            kind=Kind.MANIFEST_BODY,
            version=FORMAT_VERSION,
            study_id=inner_id,
            manifest_version=1,
            signer=signer.public.ed25519,
            entries=[],
        )
    )
    signed = encode(
        SignedManifest(body=body, signature=signer.sign(_labels.MANIFEST_SIGNATURE, body))
    )
    nonce = bytes(24)
    ciphertext = get_backend().aead_xchacha20poly1305_ietf_encrypt(
        signed,
        study._manifest_ad(outer_id, 1),
        nonce,
        derive_key_bytes(study_key._material, _labels.MANIFEST_KEY),
    )
    sealed = encode(
        ManifestEnvelope(
            kind=Kind.MANIFEST,
            version=FORMAT_VERSION,
            study_id=outer_id,
            manifest_version=1,
            nonce=nonce,
            ciphertext=ciphertext,
        )
    )
    # A study-key holder signed a body naming another study and sealed it under this one.
    with pytest.raises(c.AuthenticationFailed):
        c.open_manifest(study_key, outer_id, sealed, {signer.public.ed25519})


def test_envelope_over_64_mib_is_malformed_without_parsing() -> None:
    with pytest.raises(c.MalformedEnvelope):
        c.slot_info(b"\x97" + bytes(64 * 1024 * 1024))


def _edit_envelope(data: bytes, index: int, value: object) -> bytes:
    import msgspec

    items = msgspec.msgpack.decode(data)
    items[index] = value
    return msgspec.msgpack.encode(items)


def test_slot_shape_rules_per_type() -> None:
    keys = _account("slots")
    password = c.seal_slot(
        keys,
        c.PasswordKek(bytes(32)),
        kdf=KdfParams(alg=1, opslimit=3, memlimit_kib=65536, salt=bytes(16)),
    )
    with pytest.raises(c.MalformedEnvelope):
        c.slot_info(_edit_envelope(password, 4, bytes(16)))  # a password slot with a Key UID
    recovery = c.seal_slot(keys, c.RecoveryKey(bytes(32)))
    with pytest.raises(c.MalformedEnvelope):
        c.slot_info(_edit_envelope(recovery, 3, [1, 3, 65536, bytes(16)]))  # with KDF params
    with pytest.raises(c.MalformedEnvelope):
        c.slot_info(_edit_envelope(recovery, 4, bytes(8)))  # a short Key UID


def test_slot_that_authenticates_but_holds_no_bundle_is_malformed() -> None:
    secret = c.RecoveryKey(bytes(range(32)))
    uid = account.key_uid(secret)
    nonce = bytes(24)
    ciphertext = get_backend().aead_xchacha20poly1305_ietf_encrypt(
        b"\x90", account._slot_ad(2, None, uid), nonce, account._slot_wrap_key(secret)._material
    )
    import msgspec

    slot = msgspec.msgpack.encode([2, 1, 2, None, uid, nonce, ciphertext])
    with pytest.raises(c.MalformedEnvelope):
        c.open_slot(slot, secret)


def test_link_info_unknown_permission_is_malformed() -> None:
    creator = _account("creator")
    access = c.link_access(c.LinkSecret(bytes(32)), None)
    envelope = c.seal_link(creator, access, bytes(16), bytes(16), c.StudyKey(bytes(32)), 1, 0)
    with pytest.raises(c.MalformedEnvelope):
        c.link_info(_edit_envelope(envelope, 4, 9))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe not utf-8", "not a SecurePACS recovery key file"),
        (
            b"Some other file\nVersion: 1\nKey UID: x\nKey: y\n",
            "not a SecurePACS recovery key file",
        ),
        (b"SecurePACS recovery key\nVersion: 2\nKey UID: x\nKey: y\n", "newer SecurePACS"),
        (
            b"SecurePACS recovery key\nVersion: 1\nUID: x\nKey: y\n",
            "not a SecurePACS recovery key file",
        ),
    ],
)
def test_parse_key_file_explains_what_is_wrong(data: bytes, message: str) -> None:
    with pytest.raises(c.InvalidRecoveryKey, match=message):
        c.parse_key_file(data)


def test_ciphertext_size_matches_what_the_sealer_writes() -> None:
    key = c.StudyKey(bytes(32))
    for size in (0, 1, 4095, 4096, 4097, 3 * 4096 + 5):
        sealed = b"".join(StreamSealer(key, bytes(16), chunk_log2=12).seal([bytes(size)]))
        assert ciphertext_size(size, 12) == len(sealed)


def test_chunk_count_and_open_chunk_refuse_impossible_sizes() -> None:
    key = c.StudyKey(bytes(32))
    sealed = b"".join(StreamSealer(key, bytes(16), chunk_log2=12).seal([bytes(5000)]))
    opener = c.StreamOpener(key, bytes(16), sealed[:24])
    assert opener.chunk_count(len(sealed)) == 2
    with pytest.raises(c.TruncatedStream):
        opener.chunk_count(24 + 15)  # less than one tag after the header
    with pytest.raises(c.TruncatedStream):
        opener.chunk_count(24 + 4112 + 10)  # a final chunk shorter than a tag
    with pytest.raises(c.AuthenticationFailed):
        opener.open_chunk(0, bytes(4112 + 1), last=False)  # longer than a sealed chunk
    with pytest.raises(c.AuthenticationFailed):
        opener.open_chunk(0, bytes(100), last=False)  # a middle chunk of the wrong size


def test_manifest_plaintext_that_is_not_a_signed_manifest_is_malformed() -> None:
    import msgspec

    study_key, study_id = c.StudyKey(bytes(range(32))), bytes(16)
    key = derive_key_bytes(study_key._material, _labels.MANIFEST_KEY)

    def sealed_with(plain: bytes) -> bytes:
        nonce = bytes(24)
        ciphertext = get_backend().aead_xchacha20poly1305_ietf_encrypt(
            plain, study._manifest_ad(study_id, 1), nonce, key
        )
        return msgspec.msgpack.encode([6, 1, study_id, 1, nonce, ciphertext])

    signer = _account("signer")
    with pytest.raises(c.MalformedEnvelope):
        c.open_manifest(study_key, study_id, sealed_with(b"\x01"), {signer.public.ed25519})
    body = encode(
        ManifestBody(
            kind=Kind.MANIFEST_BODY,
            version=FORMAT_VERSION,
            study_id=study_id,
            manifest_version=1,
            signer=signer.public.ed25519,
            entries=[],
        )
    )
    signature = signer.sign(_labels.MANIFEST_SIGNATURE, body)
    canonical = encode(SignedManifest(body=body, signature=signature))
    widened = b"\x92\xc5" + len(body).to_bytes(2, "big") + canonical[3:]  # bin16 for a bin8
    assert canonical[1] == 0xC4
    with pytest.raises(c.MalformedEnvelope):
        c.open_manifest(study_key, study_id, sealed_with(widened), {signer.public.ed25519})

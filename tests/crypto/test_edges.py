"""The last branches of the crypto core: backend size checks, writer checks, rare reader paths."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

import securepacs.crypto as c
from securepacs.crypto import _labels, account, study
from securepacs.crypto._backend import get_backend
from securepacs.crypto._canonical import FORMAT_VERSION, encode
from securepacs.crypto._random import SeededRandom
from securepacs.crypto.envelope import Kind, ManifestBody, ManifestEnvelope, SignedManifest
from securepacs.crypto.kdf import KdfParams, derive_key_bytes
from securepacs.crypto.stream import StreamSealer, ciphertext_size, open_stream

if TYPE_CHECKING:
    from collections.abc import Iterator


def _account(name: str) -> c.AccountKeys:
    return account._new_bundle(SeededRandom(name.encode()))


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

"""Rebuild tests/vectors/ deterministically: ``python tests/vectors/generate.py``.

Every case is computed by the reference implementation from fixed seeds, then negative cases
are made by editing the valid bytes (bit flips, truncation, reordering, swaps, version and
encoding edits). Re-running must give byte-identical files; a test checks that. The runner in
runner.py replays every case on CPython and in Pyodide.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

import securepacs.crypto as c
from securepacs.crypto import _labels, account, stream
from securepacs.crypto._backend import get_backend
from securepacs.crypto._canonical import labelled
from securepacs.crypto._random import SeededRandom
from securepacs.crypto.kdf import ARGON2_MEMORY_KIB, ARGON2_OPSLIMIT, derive_key_bytes

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import runner  # noqa: E402 -- the runner lives beside this script, not in a package

if TYPE_CHECKING:
    from collections.abc import Callable

Case = dict[str, Any]

GROUPS = ("kdf", "account", "recovery", "stream", "study", "grant", "link", "envelope", "note")


def seed(name: str) -> str:
    return hashlib.sha256(f"securepacs vectors/{name}".encode()).hexdigest()


def kdf(
    name: str,
    *,
    opslimit: int = ARGON2_OPSLIMIT,
    memlimit_kib: int = ARGON2_MEMORY_KIB,
    alg: int = 1,
) -> dict[str, Any]:
    return {
        "alg": alg,
        "opslimit": opslimit,
        "memlimit_kib": memlimit_kib,
        "salt": hashlib.sha256(f"salt/{name}".encode()).hexdigest()[:32],
    }


def flip(hex_data: str, byte_index: int, bit: int = 0) -> str:
    data = bytearray(bytes.fromhex(hex_data))
    data[byte_index] ^= 1 << bit
    return data.hex()


def edit_field(hex_data: str, index: int, value: Any) -> str:
    """Re-encode a msgpack envelope with one array element replaced (stays canonical)."""
    items = msgspec.msgpack.decode(bytes.fromhex(hex_data))
    items[index] = value
    return msgspec.msgpack.encode(items).hex()


def widen_kind(hex_data: str) -> str:
    """The same envelope with its kind written as a uint8 (0xcc) instead of a fixint."""
    data = bytes.fromhex(hex_data)
    return (data[:1] + b"\xcc" + data[1:]).hex()


class Builder:
    def __init__(self) -> None:
        self.cases: list[Case] = []

    def add(
        self,
        group: str,
        name: str,
        op: str,
        inputs: dict[str, Any],
        comment: str,
        expect: str = "ok",
        outputs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        case: Case = {
            "name": f"{group}/{name}",
            "comment": comment,
            "op": op,
            "inputs": inputs,
            "expect": expect,
            "outputs": {},
        }
        if expect == "ok":
            computed = runner.OPERATIONS[op](inputs)
            if outputs is not None and outputs != computed:
                raise SystemExit(f"{group}/{name}: known answer disagrees with the implementation")
            case["outputs"] = computed
        result = runner.run_case(case)
        if not result["ok"]:
            raise SystemExit(f"{group}/{name}: {result['detail']}")
        self.cases.append(case)
        outputs_recorded: dict[str, Any] = case["outputs"]
        return outputs_recorded


def build_kdf(b: Builder) -> None:
    base = {"password": "correct horse battery staple", "kdf": kdf("kdf")}
    b.add(
        "kdf",
        "password-keys-default",
        "kdf.password_keys",
        base,
        "Argon2id at the v1 defaults (64 MiB, t=3), then the auth-key subkey.",
    )
    b.add(
        "kdf",
        "password-keys-nfc",
        "kdf.password_keys",
        {"password": "Cafe\u0301 \u00fcber", "kdf": kdf("kdf-nfc")},
        "A decomposed password is NFC-normalised before hashing.",
    )
    b.add(
        "kdf",
        "password-keys-nfc-same",
        "kdf.password_keys",
        {"password": "Caf\u00e9 \u00fcber", "kdf": kdf("kdf-nfc")},
        "The composed spelling yields the same auth key as the decomposed one.",
    )
    b.add(
        "kdf",
        "reject-low-memory",
        "kdf.password_keys",
        {**base, "kdf": kdf("kdf", memlimit_kib=ARGON2_MEMORY_KIB // 2)},
        "Memory below the v1 floor is a downgrade: refused before hashing.",
        expect="ParametersRejected",
    )
    b.add(
        "kdf",
        "reject-low-ops",
        "kdf.password_keys",
        {**base, "kdf": kdf("kdf", opslimit=2)},
        "Iterations below the v1 floor are refused.",
        expect="ParametersRejected",
    )
    b.add(
        "kdf",
        "reject-huge-memory",
        "kdf.password_keys",
        {**base, "kdf": kdf("kdf", memlimit_kib=4 * 1024 * 1024)},
        "Memory above the ceiling (a denial of service on the client) is refused.",
        expect="ParametersRejected",
    )
    b.add(
        "kdf",
        "reject-unknown-alg",
        "kdf.password_keys",
        {**base, "kdf": kdf("kdf", alg=2)},
        "Only Argon2id (alg 1) exists in v1.",
        expect="UnsupportedVersion",
    )


def build_account(b: Builder) -> None:
    password = "correct horse battery staple"
    created = b.add(
        "account",
        "create",
        "account.create",
        {"password": password, "seed": seed("account"), "kdf": kdf("account")},
        "A new account: bundle, public keys and the password slot.",
    )
    slot = created["password_slot"]
    b.add(
        "account",
        "unlock-password",
        "account.unlock_password",
        {"password": password, "slot": slot},
        "The right password opens the slot.",
    )
    b.add(
        "account",
        "unlock-wrong-password",
        "account.unlock_password",
        {"password": "correct horse battery stable", "slot": slot},
        "A wrong password fails authentication.",
        expect="AuthenticationFailed",
    )
    b.add(
        "account",
        "unlock-tampered-tag",
        "account.unlock_password",
        {"password": password, "slot": flip(slot, len(bytes.fromhex(slot)) - 1)},
        "One flipped bit in the tag.",
        expect="AuthenticationFailed",
    )
    low = edit_field(slot, 3, [1, 2, ARGON2_MEMORY_KIB, bytes.fromhex(kdf("account")["salt"])])
    b.add(
        "account",
        "unlock-low-kdf",
        "account.unlock_password",
        {"password": password, "slot": low},
        "A server that lowers the slot's Argon2id cost is refused before hashing.",
        expect="ParametersRejected",
    )
    b.add(
        "account",
        "unlock-unknown-version",
        "account.unlock_password",
        {"password": password, "slot": edit_field(slot, 1, 2)},
        "Envelope version 2 is unknown to v1 readers.",
        expect="UnsupportedVersion",
    )
    b.add(
        "account",
        "unlock-non-canonical",
        "account.unlock_password",
        {"password": password, "slot": widen_kind(slot)},
        "The kind written as uint8 0xcc 0x02: same value, not canonical.",
        expect="MalformedEnvelope",
    )
    b.add(
        "account",
        "unlock-trailing-bytes",
        "account.unlock_password",
        {"password": password, "slot": slot + "00"},
        "A byte after the envelope.",
        expect="MalformedEnvelope",
    )
    b.add(
        "account",
        "unlock-unknown-slot-type",
        "account.unlock_password",
        {"password": password, "slot": edit_field(slot, 2, 9)},
        "Slot type 9 is not defined in v1.",
        expect="UnsupportedVersion",
    )
    changed = b.add(
        "account",
        "change-password",
        "account.change_password",
        {
            "password": password,
            "slot": slot,
            "new_password": "new password 2",
            "seed": seed("change"),
            "kdf": kdf("change"),
        },
        "Re-wrapping the same bundle under a new password and salt.",
    )
    b.add(
        "account",
        "unlock-changed-password",
        "account.unlock_password",
        {"password": "new password 2", "slot": changed["slot"]},
        "The new slot opens to the same public keys.",
        outputs={"public_keys": created["public_keys"], "auth_key": changed["auth_key"]},
    )

    account_seed = seed("account-bundle")
    key = c.RecoveryKey(bytes.fromhex(seed("recovery-key")))
    text = c.recovery_text(key)
    rslot = b.add(
        "account",
        "recovery-slot",
        "account.recovery_slot",
        {"account_seed": account_seed, "recovery_text": text, "seed": seed("rslot")},
        "The bundle wrapped under a recovery key.",
    )["slot"]
    public = runner.account_from_seed(account_seed).public.encoded.hex()
    b.add(
        "account",
        "unlock-recovery",
        "account.unlock_recovery",
        {"recovery_text": text, "slots": [rslot]},
        "The recovery key finds its slot by Key UID and opens it.",
        outputs={"public_keys": public},
    )
    other = c.recovery_text(c.RecoveryKey(bytes.fromhex(seed("other-recovery-key"))))
    b.add(
        "account",
        "unlock-wrong-recovery",
        "account.unlock_recovery",
        {"recovery_text": other, "slots": [rslot]},
        "Another recovery key has no slot here.",
        expect="NoMatchingKey",
    )
    rbytes = bytearray(bytes.fromhex(rslot))
    b.add(
        "account",
        "unlock-recovery-tampered",
        "account.unlock_recovery",
        {"recovery_text": text, "slots": [flip(rslot, len(rbytes) - 20)]},
        "A bit flipped in the recovery slot's ciphertext.",
        expect="AuthenticationFailed",
    )
    prf = seed("passkey-prf")
    keys = runner.account_from_seed(account_seed)
    pslot = c.seal_slot(
        keys,
        c.PasskeyPrfOutput(bytes.fromhex(prf)),
        SeededRandom(bytes.fromhex(seed("pslot"))),
    ).hex()
    b.add(
        "account",
        "unlock-passkey",
        "account.unlock_passkey",
        {"prf": prf, "slots": [rslot, pslot]},
        "Reserved slot type 3: a passkey PRF output opens its own slot.",
        outputs={"public_keys": public},
    )
    pub = b.add(
        "account",
        "public-keys",
        "account.public_keys_open",
        {"public_keys": public},
        "Public keys, their self-signature and fingerprint.",
    )
    assert pub["fingerprint"].count(" ") == 7
    b.add(
        "account",
        "public-keys-substituted",
        "account.public_keys_open",
        {"public_keys": edit_field(public, 2, bytes.fromhex(seed("fake-x25519")))},
        "An X25519 key the Ed25519 key did not sign.",
        expect="AuthenticationFailed",
    )


def build_recovery(b: Builder) -> None:
    key = seed("recovery-key")
    out = b.add(
        "recovery",
        "format",
        "recovery.format",
        {"key": key},
        "Text form, Key UID and key file of a recovery key.",
    )
    text = out["text"]
    b.add(
        "recovery",
        "parse-canonical",
        "recovery.parse_text",
        {"text": text},
        "The canonical text.",
        outputs={"key_uid": out["key_uid"]},
    )
    lenient = text.lower().replace("-", " ").replace("0", "o").replace("1", "l")
    b.add(
        "recovery",
        "parse-lenient",
        "recovery.parse_text",
        {"text": lenient},
        "Lower case, spaces, O for 0 and L for 1 are read as Crockford intends.",
        outputs={"key_uid": out["key_uid"]},
    )
    typo = text[:12] + ("Z" if text[12] != "Z" else "Y") + text[13:]
    b.add(
        "recovery",
        "parse-typo",
        "recovery.parse_text",
        {"text": typo},
        "One wrong character in group 2 fails that group's check.",
        expect="InvalidRecoveryKey",
    )
    groups = text.split("-")
    groups[0], groups[1] = groups[1], groups[0]
    b.add(
        "recovery",
        "parse-swapped-groups",
        "recovery.parse_text",
        {"text": "-".join(groups)},
        "Two swapped groups fail: the check byte binds each group's position.",
        expect="InvalidRecoveryKey",
    )
    b.add(
        "recovery",
        "parse-short",
        "recovery.parse_text",
        {"text": text[:-9]},
        "A group missing.",
        expect="InvalidRecoveryKey",
    )
    b.add(
        "recovery",
        "parse-file",
        "recovery.parse_file",
        {"key_file": out["key_file"]},
        "The key file as written.",
        outputs={"key_uid": out["key_uid"]},
    )
    crlf = bytes.fromhex(out["key_file"]).replace(b"\n", b"\r\n").hex()
    b.add(
        "recovery",
        "parse-file-crlf",
        "recovery.parse_file",
        {"key_file": crlf},
        "The key file after an editor changed its line ends.",
        outputs={"key_uid": out["key_uid"]},
    )
    wrong_uid = bytes.fromhex(out["key_file"]).replace(out["key_uid"].encode(), b"0" * 32).hex()
    b.add(
        "recovery",
        "parse-file-wrong-uid",
        "recovery.parse_file",
        {"key_file": wrong_uid},
        "A key file whose Key UID does not match its key.",
        expect="InvalidRecoveryKey",
    )


def build_stream(b: Builder) -> None:
    study_key, file_id = seed("stream-study-key"), seed("stream-file-id")[:32]
    log2 = stream.CHUNK_LOG2_MIN
    chunk = 1 << log2
    sealed: dict[int, str] = {}
    for size in (0, 1, chunk - 1, chunk, chunk + 1, 3 * chunk + 5):
        plaintext = hashlib.shake_256(f"plaintext/{size}".encode()).digest(size).hex()
        inputs = {
            "study_key": study_key,
            "file_id": file_id,
            "chunk_log2": log2,
            "plaintext": plaintext,
            "piece_size": 1000,
        }
        sealed[size] = b.add(
            "stream",
            f"seal-{size}",
            "stream.seal",
            inputs,
            f"{size} bytes in {chunk}-byte chunks, fed in 1000-byte pieces.",
        )["sealed"]
        b.add(
            "stream",
            f"open-{size}",
            "stream.open",
            {"study_key": study_key, "file_id": file_id, "sealed": sealed[size], "piece_size": 777},
            f"Open {size} bytes fed in 777-byte pieces.",
            outputs={"plaintext": plaintext},
        )
    many = sealed[3 * chunk + 5]
    raw = bytes.fromhex(many)
    h, sc = stream.HEADER_BYTES, chunk + stream.TAG_BYTES
    chunks = [raw[h + i * sc : h + (i + 1) * sc] for i in range(4)]
    base = {"study_key": study_key, "file_id": file_id}
    b.add(
        "stream",
        "open-chunk-random-access",
        "stream.open_chunk",
        {**base, "sealed": many, "index": 2},
        "Chunk 2 opened on its own, as after an HTTP Range read.",
        outputs={
            "plaintext": hashlib.shake_256(b"plaintext/12293")
            .digest(12293)[2 * chunk : 3 * chunk]
            .hex()
        },
    )
    b.add(
        "stream",
        "open-chunk-last",
        "stream.open_chunk",
        {**base, "sealed": many, "index": 3},
        "The short last chunk on its own.",
    )
    negatives: list[tuple[str, str, str, str]] = [
        (
            "tampered-tag",
            flip(many, h + sc - 1),
            "AuthenticationFailed",
            "A bit flipped in chunk 0's tag.",
        ),
        (
            "tampered-body",
            flip(many, h + sc + 10),
            "AuthenticationFailed",
            "A bit flipped in chunk 1's ciphertext.",
        ),
        (
            "truncated-at-boundary",
            raw[: h + 3 * sc].hex(),
            "TruncatedStream",
            "The last chunk dropped: chunk 2 was sealed as a middle chunk.",
        ),
        (
            "truncated-mid-chunk",
            raw[:-7].hex(),
            "TruncatedStream",
            "Seven bytes cut from the 21-byte last chunk: less than a tag is left.",
        ),
        (
            "truncated-inside-last",
            raw[:-3].hex(),
            "AuthenticationFailed",
            "Three bytes cut from the last chunk: indistinguishable from tampering.",
        ),
        ("truncated-header", raw[:10].hex(), "TruncatedStream", "Only part of the header."),
        (
            "reordered",
            (raw[:h] + chunks[1] + chunks[0] + chunks[2] + chunks[3]).hex(),
            "AuthenticationFailed",
            "Chunks 0 and 1 swapped.",
        ),
        (
            "dropped-middle",
            (raw[:h] + chunks[0] + chunks[2] + chunks[3]).hex(),
            "AuthenticationFailed",
            "Chunk 1 removed.",
        ),
        (
            "appended",
            (raw + b"\x00" * 17).hex(),
            "AuthenticationFailed",
            "Data after the last chunk.",
        ),
        ("bad-magic", (b"XPCS" + raw[4:]).hex(), "MalformedEnvelope", "Not a stream header."),
        (
            "unknown-version",
            (raw[:4] + b"\x02" + raw[5:]).hex(),
            "UnsupportedVersion",
            "Stream version 2.",
        ),
        ("unknown-alg", (raw[:5] + b"\x07" + raw[6:]).hex(), "UnsupportedVersion", "Algorithm 7."),
        (
            "bad-chunk-size",
            (raw[:6] + b"\x05" + raw[7:]).hex(),
            "MalformedEnvelope",
            "A chunk size below 2^12.",
        ),
        (
            "reserved-byte",
            (raw[:7] + b"\x01" + raw[8:]).hex(),
            "MalformedEnvelope",
            "The reserved header byte is not zero.",
        ),
    ]
    for name, data, expect, comment in negatives:
        b.add(
            "stream",
            f"open-{name}",
            "stream.open",
            {**base, "sealed": data},
            comment,
            expect=expect,
        )
    other_file = seed("stream-other-file")[:32]
    other = b.add(
        "stream",
        "seal-other-file",
        "stream.seal",
        {
            "study_key": study_key,
            "file_id": other_file,
            "chunk_log2": log2,
            "plaintext": "00" * (3 * chunk + 5),
        },
        "Another instance of the same study.",
    )["sealed"]
    other_chunk = bytes.fromhex(other)[h + sc : h + 2 * sc]
    swapped = raw[:h] + chunks[0] + other_chunk + chunks[2] + chunks[3]
    b.add(
        "stream",
        "open-chunk-from-other-file",
        "stream.open",
        {**base, "sealed": swapped.hex()},
        "Chunk 1 replaced by chunk 1 of another file of the same study.",
        expect="AuthenticationFailed",
    )
    b.add(
        "stream",
        "open-other-file-header",
        "stream.open",
        {**base, "sealed": other},
        "A whole other file served under this file's id.",
        expect="AuthenticationFailed",
    )
    b.add(
        "stream",
        "open-other-study",
        "stream.open",
        {"study_key": seed("stream-other-study"), "file_id": file_id, "sealed": many},
        "The right file opened with another study's key.",
        expect="AuthenticationFailed",
    )


def build_study(b: Builder) -> None:
    account_seed = seed("study-owner")
    study_key, study_id = seed("study-key"), seed("study-id")[:32]
    wrapped = b.add(
        "study",
        "key-wrap",
        "study.key_wrap",
        {
            "account_seed": account_seed,
            "study_id": study_id,
            "study_key": study_key,
            "seed": seed("study-wrap"),
        },
        "The owner's copy of a study key.",
    )["wrapped"]
    unwrap = {
        "account_seed": account_seed,
        "study_id": study_id,
        "wrapped": wrapped,
        "expected_study_key": study_key,
    }
    b.add(
        "study",
        "key-unwrap",
        "study.key_unwrap",
        unwrap,
        "Unwrapped by its owner.",
        outputs={"study_key_matches": True},
    )
    b.add(
        "study",
        "key-unwrap-other-study",
        "study.key_unwrap",
        {**unwrap, "study_id": seed("other-study")[:32]},
        "A wrapped key served for another study.",
        expect="AuthenticationFailed",
    )
    b.add(
        "study",
        "key-unwrap-other-account",
        "study.key_unwrap",
        {**unwrap, "account_seed": seed("someone-else")},
        "Another account's key.",
        expect="AuthenticationFailed",
    )
    meta = "82a44e616d65a8444f455e4a4f484ea24964a3313233"
    sealed = b.add(
        "study",
        "metadata-seal",
        "study.metadata_seal",
        {"study_key": study_key, "study_id": study_id, "plaintext": meta, "seed": seed("metadata")},
        "A metadata box.",
    )["sealed"]
    mo = {"study_key": study_key, "study_id": study_id, "sealed": sealed}
    b.add(
        "study", "metadata-open", "study.metadata_open", mo, "Opened.", outputs={"plaintext": meta}
    )
    b.add(
        "study",
        "metadata-other-study",
        "study.metadata_open",
        {**mo, "study_id": seed("other-study")[:32]},
        "A box moved to another study.",
        expect="AuthenticationFailed",
    )
    b.add(
        "study",
        "metadata-tampered",
        "study.metadata_open",
        {**mo, "sealed": flip(sealed, len(bytes.fromhex(sealed)) - 3)},
        "One bit flipped.",
        expect="AuthenticationFailed",
    )
    b.add(
        "study",
        "metadata-unknown-version",
        "study.metadata_open",
        {**mo, "sealed": edit_field(sealed, 1, 7)},
        "Version 7.",
        expect="UnsupportedVersion",
    )
    b.add(
        "study",
        "metadata-wrong-kind",
        "study.metadata_open",
        {**mo, "sealed": edit_field(sealed, 0, 6)},
        "A manifest kind where a metadata box belongs.",
        expect="MalformedEnvelope",
    )
    entries = [
        {
            "file_id": seed(f"entry-{n}")[:32],
            "plaintext_size": 1000 * n,
            "ciphertext_size": 1000 * n + 40,
            "ciphertext_hash": seed(f"hash-{n}"),
            "series_uid": "1.2.840.113619.2.1",
            "instance_uid": f"1.2.840.113619.2.1.{n}",
        }
        for n in range(3)
    ]
    manifest = b.add(
        "study",
        "manifest-seal",
        "study.manifest_seal",
        {
            "study_key": study_key,
            "study_id": study_id,
            "manifest_version": 2,
            "entries": entries,
            "signer_seed": account_seed,
            "seed": seed("manifest"),
        },
        "A signed, encrypted manifest.",
    )["sealed"]
    mo = {
        "study_key": study_key,
        "study_id": study_id,
        "sealed": manifest,
        "trusted_signer_seeds": [account_seed],
    }
    b.add(
        "study",
        "manifest-open",
        "study.manifest_open",
        mo,
        "Opened, signature checked against the owner.",
    )
    b.add(
        "study",
        "manifest-untrusted-signer",
        "study.manifest_open",
        {**mo, "trusted_signer_seeds": [seed("someone-else")]},
        "Signed by someone the reader does not trust.",
        expect="AuthenticationFailed",
    )
    b.add(
        "study",
        "manifest-other-study",
        "study.manifest_open",
        {**mo, "study_id": seed("other-study")[:32]},
        "Served for another study.",
        expect="AuthenticationFailed",
    )
    b.add(
        "study",
        "manifest-rolled-back",
        "study.manifest_open",
        {**mo, "sealed": edit_field(manifest, 3, 1)},
        "The header claims version 1 of a version-2 manifest.",
        expect="AuthenticationFailed",
    )
    b.add(
        "study",
        "uid-tag",
        "study.uid_tag",
        {"account_seed": account_seed, "study_instance_uid": "1.2.840.113619.2.55.3"},
        "The owner's keyed tag of a StudyInstanceUID.",
    )


def build_grant(b: Builder) -> None:
    granter, recipient = seed("granter"), seed("recipient")
    recipient_pub = runner.account_from_seed(recipient).public.encoded.hex()
    study_key, study_id = seed("grant-study-key"), seed("grant-study-id")[:32]
    grant = b.add(
        "grant",
        "seal",
        "grant.seal",
        {
            "granter_seed": granter,
            "recipient_public_keys": recipient_pub,
            "study_id": study_id,
            "study_key": study_key,
            "permission": 2,
            "expires_at": 1_900_000_000,
            "seed": seed("grant"),
        },
        "Download permission until 2030-03-17.",
    )["grant"]
    go = {"grant": grant, "recipient_seed": recipient, "expected_study_key": study_key}
    b.add("grant", "open", "grant.open", go, "Opened by its recipient.")
    b.add(
        "grant",
        "open-wrong-recipient",
        "grant.open",
        {**go, "recipient_seed": granter},
        "Opened by another account.",
        expect="NoMatchingKey",
    )
    b.add(
        "grant",
        "open-permission-raised",
        "grant.open",
        {**go, "grant": edit_field(grant, 5, 4)},
        "The server raises Download to Admin: the signature breaks.",
        expect="AuthenticationFailed",
    )
    b.add(
        "grant",
        "open-expiry-extended",
        "grant.open",
        {**go, "grant": edit_field(grant, 6, 0)},
        "The server removes the expiry: the signature breaks.",
        expect="AuthenticationFailed",
    )
    b.add(
        "grant",
        "open-tampered-ciphertext",
        "grant.open",
        {**go, "grant": edit_field(grant, 9, bytes(48))},
        "The sealed key replaced.",
        expect="AuthenticationFailed",
    )
    b.add(
        "grant",
        "open-unknown-permission",
        "grant.open",
        {**go, "grant": edit_field(grant, 5, 9)},
        "Permission 9 is not defined.",
        expect="MalformedEnvelope",
    )
    b.add(
        "grant",
        "open-non-canonical",
        "grant.open",
        {**go, "grant": widen_kind(grant)},
        "The kind as uint8.",
        expect="MalformedEnvelope",
    )


def build_note(b: Builder) -> None:
    study_key, study_id = seed("note-study-key"), seed("note-study-id")[:32]
    share_id = seed("note-share-id")[:32]
    text = "Bitte ansehen: L\u00e4sion im rechten Oberlappen, Vergleich mit 2023 \u2013 Dr. M."
    sealed = b.add(
        "note",
        "seal",
        "note.seal",
        {
            "study_key": study_key,
            "study_id": study_id,
            "share_id": share_id,
            "text": text,
            "seed": seed("note"),
        },
        "The sharer's message to one share, with non-ASCII text.",
    )["sealed"]
    no = {"study_key": study_key, "study_id": study_id, "share_id": share_id, "sealed": sealed}
    b.add(
        "note", "open", "note.open", no, "Opened by the share's recipient.", outputs={"text": text}
    )
    other_share = seed("note-other-share-id")[:32]
    b.add(
        "note",
        "other-share",
        "note.open",
        {
            **no,
            "share_id": other_share,
            "sealed": edit_field(sealed, 3, bytes.fromhex(other_share)),
        },
        "The server relabels the note as another share's: the key and the AD no longer match.",
        expect="AuthenticationFailed",
    )
    b.add(
        "note",
        "other-study",
        "note.open",
        {**no, "study_id": seed("other-study")[:32]},
        "A note served for another study.",
        expect="AuthenticationFailed",
    )
    b.add(
        "note",
        "tampered",
        "note.open",
        {**no, "sealed": flip(sealed, len(bytes.fromhex(sealed)) - 3)},
        "One bit flipped in the tag.",
        expect="AuthenticationFailed",
    )
    b.add(
        "note",
        "wrong-kind",
        "note.open",
        {**no, "sealed": edit_field(sealed, 0, 5)},
        "A metadata-box kind where a share note belongs.",
        expect="MalformedEnvelope",
    )

    def hand_seal(plaintext: bytes, nonce_seed: str) -> str:
        """protocol.md §8.6 from the primitives, without the writer's checks on the text."""
        ids = bytes.fromhex(study_id), bytes.fromhex(share_id)
        key = derive_key_bytes(bytes.fromhex(study_key), _labels.SHARE_NOTE_KEY, ids[1])
        ad = labelled(_labels.SHARE_NOTE_AD, msgspec.msgpack.encode([10, 1, *ids]))
        nonce = SeededRandom(bytes.fromhex(nonce_seed)).take(24)
        ciphertext = get_backend().aead_xchacha20poly1305_ietf_encrypt(plaintext, ad, nonce, key)
        return msgspec.msgpack.encode([10, 1, *ids, nonce, ciphertext]).hex()

    # The hand-built path is the writer's own construction, so its one defect below is the text.
    assert hand_seal(text.encode("utf-8"), seed("note")) == sealed
    b.add(
        "note",
        "not-utf8",
        "note.open",
        {**no, "sealed": hand_seal("Befund: L\u00e4sion".encode("latin-1"), seed("note-not-utf8"))},
        "A correctly sealed note whose text is Latin-1, not UTF-8.",
        expect="MalformedEnvelope",
    )


def build_link(b: Builder) -> None:
    creator = seed("link-creator")
    study_key, study_id = seed("link-study-key"), seed("link-study-id")[:32]
    link_id = seed("link-id")[:32]
    secret = c.LinkSecret(bytes.fromhex(seed("link-secret")))
    plain = c.encode_fragment(secret, password_required=False)
    locked = c.encode_fragment(secret, password_required=True)
    b.add(
        "link",
        "fragment",
        "link.fragment",
        {"fragment": "#" + plain},
        "A fragment with no password.",
    )
    b.add("link", "fragment-password", "link.fragment", {"fragment": locked}, "The password flag.")
    b.add(
        "link",
        "fragment-truncated",
        "link.fragment",
        {"fragment": plain[:-3]},
        "Characters missing from the end.",
        expect="MalformedEnvelope",
    )
    b.add(
        "link",
        "fragment-unknown-version",
        "link.fragment",
        {"fragment": "Ag" + plain[2:]},
        "Fragment version 2.",
        expect="UnsupportedVersion",
    )
    b.add(
        "link",
        "fragment-bad-char",
        "link.fragment",
        {"fragment": plain[:10] + "+" + plain[11:]},
        "A character outside base64url.",
        expect="MalformedEnvelope",
    )
    last = plain[-1]
    flagged = base64.urlsafe_b64encode(bytes((1, 2)) + secret._material).rstrip(b"=").decode()
    b.add(
        "link",
        "fragment-unknown-flag",
        "link.fragment",
        {"fragment": flagged},
        "Flag bit 1 is not defined in fragment version 1.",
        expect="MalformedEnvelope",
    )
    b.add(
        "link",
        "fragment-non-canonical",
        "link.fragment",
        {"fragment": plain[:-1] + ("B" if last == "A" else chr(ord(last) ^ 1))},
        "The spare bits of the last character set.",
        expect="MalformedEnvelope",
    )
    b.add(
        "link",
        "access",
        "link.access",
        {"fragment": plain},
        "Access key and server verifier without a password.",
    )
    b.add(
        "link",
        "access-password",
        "link.access",
        {"fragment": locked, "password": "tulip"},
        "With a link password (Argon2id, salt derived from the secret).",
    )
    envelope = b.add(
        "link",
        "seal",
        "link.seal",
        {
            "creator_seed": creator,
            "fragment": plain,
            "link_id": link_id,
            "study_id": study_id,
            "study_key": study_key,
            "permission": 1,
            "expires_at": 0,
            "seed": seed("link-seal"),
        },
        "A view-only link that never expires.",
    )["envelope"]
    lo = {
        "envelope": envelope,
        "link_id": link_id,
        "fragment": plain,
        "expected_study_key": study_key,
    }
    b.add("link", "open", "link.open", lo, "Opened from the fragment.")
    b.add(
        "link",
        "open-other-link-id",
        "link.open",
        {**lo, "link_id": seed("x")[:32]},
        "An envelope served for another link.",
        expect="AuthenticationFailed",
    )
    b.add(
        "link",
        "open-permission-raised",
        "link.open",
        {**lo, "envelope": edit_field(envelope, 4, 2)},
        "View raised to Download by the server.",
        expect="AuthenticationFailed",
    )
    other = c.encode_fragment(
        c.LinkSecret(bytes.fromhex(seed("other-secret"))), password_required=False
    )
    b.add(
        "link",
        "open-wrong-secret",
        "link.open",
        {**lo, "fragment": other},
        "A different secret.",
        expect="AuthenticationFailed",
    )
    protected = b.add(
        "link",
        "seal-password",
        "link.seal",
        {
            "creator_seed": creator,
            "fragment": locked,
            "password": "tulip",
            "link_id": link_id,
            "study_id": study_id,
            "study_key": study_key,
            "permission": 2,
            "expires_at": 1_900_000_000,
            "seed": seed("link-seal-pw"),
        },
        "A password-protected download link.",
    )["envelope"]
    po = {**lo, "envelope": protected, "fragment": locked, "password": "tulip"}
    b.add("link", "open-password", "link.open", po, "The right password.")
    b.add(
        "link",
        "open-wrong-password",
        "link.open",
        {**po, "password": "tulips"},
        "A wrong link password.",
        expect="AuthenticationFailed",
    )


def build_envelope(b: Builder) -> None:
    public = runner.account_from_seed(seed("envelope")).public.encoded.hex()
    b.add(
        "envelope",
        "public-keys-wrong-kind",
        "account.public_keys_open",
        {"public_keys": edit_field(public, 0, 2)},
        "A key-slot kind.",
        expect="MalformedEnvelope",
    )
    b.add(
        "envelope",
        "public-keys-short-key",
        "account.public_keys_open",
        {"public_keys": edit_field(public, 2, bytes(31))},
        "A 31-byte key.",
        expect="MalformedEnvelope",
    )
    b.add(
        "envelope",
        "public-keys-extra-field",
        "account.public_keys_open",
        {
            "public_keys": msgspec.msgpack.encode(
                [*msgspec.msgpack.decode(bytes.fromhex(public)), 0]
            ).hex()
        },
        "An unknown sixth field.",
        expect="MalformedEnvelope",
    )
    b.add(
        "envelope",
        "public-keys-map",
        "account.public_keys_open",
        {"public_keys": msgspec.msgpack.encode({"kind": 1}).hex()},
        "A map where an array belongs.",
        expect="MalformedEnvelope",
    )
    b.add(
        "envelope",
        "public-keys-empty",
        "account.public_keys_open",
        {"public_keys": ""},
        "No bytes at all.",
        expect="MalformedEnvelope",
    )
    b.add(
        "envelope",
        "public-keys-str-for-bin",
        "account.public_keys_open",
        {"public_keys": edit_field(public, 2, "x" * 32)},
        "A string where bytes belong.",
        expect="MalformedEnvelope",
    )


def build_bindings(b: Builder) -> None:
    """Cases for the rules that bind content to the manifest and refuse hostile keys."""
    study_key, file_id = seed("instance-study-key"), seed("instance-file-id")[:32]
    plaintext = hashlib.shake_256(b"instance").digest(9000).hex()
    sealed = b.add(
        "stream",
        "seal-instance",
        "stream.seal",
        {"study_key": study_key, "file_id": file_id, "chunk_log2": 12, "plaintext": plaintext},
        "An instance of 9000 bytes that a manifest entry describes.",
    )["sealed"]
    raw = bytes.fromhex(sealed)
    entry = {
        "file_id": file_id,
        "plaintext_size": 9000,
        "ciphertext_size": len(raw),
        "ciphertext_hash": c.ciphertext_hash(raw).hex(),
        "series_uid": "1.2.3",
        "instance_uid": "1.2.3.4",
    }
    base = {"study_key": study_key, "entry": entry, "sealed": sealed}
    b.add(
        "stream",
        "open-instance",
        "stream.open_instance",
        base,
        "Opened against its signed manifest entry: size and hash match.",
        outputs={"plaintext": plaintext},
    )
    other = b.add(
        "stream",
        "seal-instance-resealed",
        "stream.seal",
        {"study_key": study_key, "file_id": file_id, "chunk_log2": 12, "plaintext": "00" * 9000},
        "Someone holding the study key seals other content under the same file id.",
    )["sealed"]
    b.add(
        "stream",
        "open-instance-resealed",
        "stream.open_instance",
        {**base, "sealed": other},
        "Every chunk authenticates, but the hash differs from the uploader's manifest.",
        expect="AuthenticationFailed",
    )
    b.add(
        "stream",
        "open-instance-wrong-size",
        "stream.open_instance",
        {**base, "entry": {**entry, "ciphertext_size": len(raw) + 1}},
        "The manifest entry records another size.",
        expect="AuthenticationFailed",
    )
    header = raw[: stream.HEADER_BYTES]
    key = stream.content_key(c.StudyKey(bytes.fromhex(study_key)), bytes.fromhex(file_id))
    encrypt = get_backend().aead_chacha20poly1305_ietf_encrypt
    first = encrypt(bytes(4096), header, bytes(11) + b"\x00", key._material)
    empty_last = encrypt(b"", header, (1).to_bytes(11, "big") + b"\x01", key._material)
    b.add(
        "stream",
        "open-empty-final-chunk",
        "stream.open",
        {"study_key": study_key, "file_id": file_id, "sealed": (header + first + empty_last).hex()},
        "A final chunk without plaintext after chunk 0 (writers never produce one).",
        expect="TruncatedStream",
    )

    account_seed = seed("account-bundle")
    keys = runner.account_from_seed(account_seed)
    recovery_text = c.recovery_text(c.RecoveryKey(bytes.fromhex(seed("recovery-key"))))
    rslot = runner.op_recovery_slot(
        {"account_seed": account_seed, "recovery_text": recovery_text, "seed": seed("rslot")}
    )["slot"]
    b.add(
        "account",
        "unlock-recovery-skips-unknown-slots",
        "account.unlock_recovery",
        {
            "recovery_text": recovery_text,
            "slots": [edit_field(rslot, 1, 2), edit_field(rslot, 2, 7), rslot],
        },
        "Slots of a newer version or type come first; the readable slot is still found.",
        outputs={"public_keys": keys.public.encoded.hex()},
    )
    ed_public, ed_secret = get_backend().sign_seed_keypair(bytes.fromhex(seed("low-order")))
    for name, point in (("zero", bytes(32)), ("order-8", bytes.fromhex(LOW_ORDER_POINT))):
        message = account._public_keys_message(point, ed_public)
        envelope = msgspec.msgpack.encode(
            [1, 1, point, ed_public, get_backend().sign_detached(message, ed_secret)]
        )
        b.add(
            "account",
            f"public-keys-low-order-{name}",
            "account.public_keys_open",
            {"public_keys": envelope.hex()},
            "A correctly signed X25519 key of low order: every shared secret would be zero.",
            expect="AuthenticationFailed",
        )
    text = c.recovery_text(c.RecoveryKey(bytes.fromhex(seed("recovery-key"))))
    position = next(n for n, ch in enumerate(text) if ch == "1")
    b.add(
        "recovery",
        "parse-non-ascii",
        "recovery.parse_text",
        {"text": text[:position] + "\u0131" + text[position + 1 :]},
        "A dotless i (U+0131) where a 1 belongs: Unicode case mapping must not read it as I.",
        expect="InvalidRecoveryKey",
    )
    tag = b.add(
        "study",
        "uid-tag-padded",
        "study.uid_tag",
        {"account_seed": seed("study-owner"), "study_instance_uid": "1.2.840.113619.2.55.3\x00"},
        "A UID with DICOM's NUL padding tags like the bare UID.",
    )
    assert tag == runner.op_study_uid_tag(
        {"account_seed": seed("study-owner"), "study_instance_uid": "1.2.840.113619.2.55.3"}
    )


def build_server_checks(b: Builder) -> None:
    """Keyless checks the server runs on what it stores: signatures and shape, no secret."""
    recipient = runner.account_from_seed(seed("recipient")).public.encoded.hex()
    grant = runner.op_grant_seal(
        {
            "granter_seed": seed("granter"),
            "recipient_public_keys": recipient,
            "study_id": seed("info-study-id")[:32],
            "study_key": seed("info-study-key"),
            "permission": 1,
            "expires_at": 0,
            "seed": seed("info-grant"),
        }
    )["grant"]
    b.add("grant", "info", "grant.info", {"grant": grant}, "What the server may read of a grant.")
    b.add(
        "grant",
        "info-permission-raised",
        "grant.info",
        {"grant": edit_field(grant, 5, 3)},
        "The server's own check catches an edited permission.",
        expect="AuthenticationFailed",
    )
    secret = c.LinkSecret(bytes.fromhex(seed("info-link-secret")))
    envelope = runner.op_link_seal(
        {
            "creator_seed": seed("link-creator"),
            "fragment": c.encode_fragment(secret, password_required=False),
            "link_id": seed("info-link-id")[:32],
            "study_id": seed("info-study-id")[:32],
            "study_key": seed("info-study-key"),
            "permission": 2,
            "expires_at": 1_900_000_000,
            "seed": seed("info-link"),
        }
    )["envelope"]
    b.add(
        "link", "info", "link.info", {"envelope": envelope}, "What the server may read of a link."
    )
    b.add(
        "link",
        "info-expiry-removed",
        "link.info",
        {"envelope": edit_field(envelope, 5, 0)},
        "The server's own check catches a removed expiry.",
        expect="AuthenticationFailed",
    )


LOW_ORDER_POINT = "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"


BUILDERS: tuple[Callable[[Builder], None], ...] = (
    build_kdf,
    build_account,
    build_recovery,
    build_stream,
    build_study,
    build_grant,
    build_link,
    build_envelope,
    build_bindings,
    build_server_checks,
    build_note,
)


def build() -> list[Case]:
    b = Builder()
    for fn in BUILDERS:
        fn(b)
    return b.cases


def write(cases: list[Case], root: Path) -> None:
    for group in GROUPS:
        shutil.rmtree(root / group, ignore_errors=True)
    for case in cases:
        path = root / f"{case['name']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(case, indent=1, ensure_ascii=True) + "\n", encoding="utf-8")


SPEC = HERE.parent.parent / "docs" / "protocol.md"
INDEX_START, INDEX_END = "<!-- vectors-index:start -->", "<!-- vectors-index:end -->"


def index_block(cases: list[Case]) -> str:
    """The vectors index of protocol.md §12.5, one row per case, sorted by name."""
    rows = sorted((case["name"], case["op"], case["expect"]) for case in cases)
    lines = ["| Vector | Operation | Expect |", "|---|---|---|"]
    lines += [f"| {name} | {op} | {expect} |" for name, op, expect in rows]
    return "\n".join([INDEX_START, *lines, INDEX_END])


def spec_index(spec_text: str) -> str:
    """The vectors index block as it stands in the spec."""
    rest = spec_text.split(INDEX_START, 1)[1]
    return INDEX_START + rest.split(INDEX_END, 1)[0] + INDEX_END


def write_spec_index(cases: list[Case]) -> None:
    text = SPEC.read_text(encoding="utf-8")
    SPEC.write_text(text.replace(spec_index(text), index_block(cases)), encoding="utf-8")


def main() -> None:
    cases = build()
    write(cases, HERE)
    write_spec_index(cases)
    print(f"wrote {len(cases)} vectors under {HERE}")  # noqa: T201


if __name__ == "__main__":
    main()

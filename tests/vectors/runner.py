"""The one vector runner: stdlib plus ``securepacs.crypto``, so it runs on CPython and Pyodide.

``run(argument)`` takes a JSON list of vector cases (as in tests/vectors/*/*.json) and returns
a JSON list of results ``{"name", "ok", "detail"}``. Every operation reproduces sealed outputs
byte for byte from the seed in the case, and every negative case must fail with exactly the
error class named by ``expect``: any other exception is a failure of the runner's host.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import securepacs.crypto as c
from securepacs.crypto import account, kdf, link, note, recovery, share, stream, study
from securepacs.crypto._random import SeededRandom

if TYPE_CHECKING:
    from collections.abc import Callable

Inputs = dict[str, Any]
Outputs = dict[str, Any]


def _b(value: str) -> bytes:
    return bytes.fromhex(value)


def _rng(inputs: Inputs) -> SeededRandom:
    return SeededRandom(_b(inputs["seed"]))


def _params(raw: dict[str, Any]) -> kdf.KdfParams:
    return kdf.KdfParams(
        alg=raw["alg"],
        opslimit=raw["opslimit"],
        memlimit_kib=raw["memlimit_kib"],
        salt=_b(raw["salt"]),
    )


def account_from_seed(seed: str) -> account.AccountKeys:
    """An account bundle drawn from a seed (vectors name accounts by seed, never by secret)."""
    return account._new_bundle(SeededRandom(_b(seed)))


def _public(keys: account.AccountKeys | account.PublicKeys) -> str:
    pub = keys.public if isinstance(keys, account.AccountKeys) else keys
    return pub.encoded.hex()


def op_password_keys(i: Inputs) -> Outputs:
    keys = kdf.derive_password_keys(i["password"], _params(i["kdf"]))
    return {"auth_key": keys.auth_key.to_bytes().hex()}


def op_account_create(i: Inputs) -> Outputs:
    new = account.create_account(i["password"], _rng(i), kdf=_params(i["kdf"]))
    return {
        "public_keys": _public(new.keys),
        "password_slot": new.password_slot.hex(),
        "auth_key": new.password_keys.auth_key.to_bytes().hex(),
    }


def op_unlock_password(i: Inputs) -> Outputs:
    keys, password_keys = account.unlock_with_password(i["password"], _b(i["slot"]))
    return {"public_keys": _public(keys), "auth_key": password_keys.auth_key.to_bytes().hex()}


def op_change_password(i: Inputs) -> Outputs:
    keys, _ = account.unlock_with_password(i["password"], _b(i["slot"]))
    password_keys, slot = account.change_password(
        keys, i["new_password"], _rng(i), kdf=_params(i["kdf"])
    )
    return {"slot": slot.hex(), "auth_key": password_keys.auth_key.to_bytes().hex()}


def op_recovery_slot(i: Inputs) -> Outputs:
    keys = account_from_seed(i["account_seed"])
    key = recovery.parse_recovery_text(i["recovery_text"])
    return {"slot": account.seal_slot(keys, key, _rng(i)).hex()}


def op_unlock_recovery(i: Inputs) -> Outputs:
    key = recovery.parse_recovery_text(i["recovery_text"])
    keys = account.unlock_with_secret([_b(s) for s in i["slots"]], key)
    return {"public_keys": _public(keys)}


def op_unlock_passkey(i: Inputs) -> Outputs:
    keys = account.unlock_with_secret([_b(s) for s in i["slots"]], c.PasskeyPrfOutput(_b(i["prf"])))
    return {"public_keys": _public(keys)}


def op_recovery_format(i: Inputs) -> Outputs:
    key = c.RecoveryKey(_b(i["key"]))
    return {
        "text": recovery.recovery_text(key),
        "key_uid": recovery.format_key_uid(key),
        "key_file": recovery.recovery_key_file(key).hex(),
    }


def op_recovery_parse(i: Inputs) -> Outputs:
    key = recovery.parse_recovery_text(i["text"])
    return {"key_uid": recovery.format_key_uid(key)}


def op_recovery_parse_file(i: Inputs) -> Outputs:
    key = recovery.parse_key_file(_b(i["key_file"]))
    return {"key_uid": recovery.format_key_uid(key)}


def op_public_keys_open(i: Inputs) -> Outputs:
    pub = account.open_public_keys(_b(i["public_keys"]))
    return {
        "x25519": pub.x25519.hex(),
        "ed25519": pub.ed25519.hex(),
        "fingerprint": c.fingerprint(pub),
    }


def op_stream_seal(i: Inputs) -> Outputs:
    sealer = stream.StreamSealer(c.StudyKey(_b(i["study_key"])), _b(i["file_id"]), i["chunk_log2"])
    plaintext = _b(i["plaintext"])
    step = i.get("piece_size") or max(1, len(plaintext))
    pieces = [plaintext[n : n + step] for n in range(0, len(plaintext), step)]
    return {"sealed": b"".join(sealer.seal(pieces)).hex()}


def op_stream_open(i: Inputs) -> Outputs:
    sealed = _b(i["sealed"])
    step = i.get("piece_size") or max(1, len(sealed))
    pieces = [sealed[n : n + step] for n in range(0, len(sealed), step)]
    out = stream.open_stream(c.StudyKey(_b(i["study_key"])), _b(i["file_id"]), pieces)
    return {"plaintext": b"".join(out).hex()}


def op_stream_open_chunk(i: Inputs) -> Outputs:
    sealed = _b(i["sealed"])
    opener = stream.StreamOpener(
        c.StudyKey(_b(i["study_key"])), _b(i["file_id"]), sealed[: stream.HEADER_BYTES]
    )
    total = i.get("total_size", len(sealed))
    index = i["index"]
    offset, length = opener.chunk_span(index, total)
    last = index == opener.chunk_count(total) - 1
    return {
        "plaintext": opener.open_chunk(index, sealed[offset : offset + length], last=last).hex()
    }


def op_stream_open_instance(i: Inputs) -> Outputs:
    sealed = _b(i["sealed"])
    out = stream.open_instance(c.StudyKey(_b(i["study_key"])), _entry(i["entry"]), [sealed])
    return {"plaintext": b"".join(out).hex()}


def op_study_key_wrap(i: Inputs) -> Outputs:
    keys = account_from_seed(i["account_seed"])
    wrapped = study.wrap_study_key(
        keys.account_key, _b(i["study_id"]), c.StudyKey(_b(i["study_key"])), _rng(i)
    )
    return {"wrapped": wrapped.hex()}


def op_study_key_unwrap(i: Inputs) -> Outputs:
    keys = account_from_seed(i["account_seed"])
    key = study.unwrap_study_key(keys.account_key, _b(i["study_id"]), _b(i["wrapped"]))
    return {"study_key_matches": key == c.StudyKey(_b(i["expected_study_key"]))}


def op_metadata_seal(i: Inputs) -> Outputs:
    sealed = study.seal_metadata(
        c.StudyKey(_b(i["study_key"])), _b(i["study_id"]), _b(i["plaintext"]), _rng(i)
    )
    return {"sealed": sealed.hex()}


def op_metadata_open(i: Inputs) -> Outputs:
    plain = study.open_metadata(c.StudyKey(_b(i["study_key"])), _b(i["study_id"]), _b(i["sealed"]))
    return {"plaintext": plain.hex()}


def _entry(raw: dict[str, Any]) -> study.ManifestEntry:
    return study.ManifestEntry(
        file_id=_b(raw["file_id"]),
        plaintext_size=raw["plaintext_size"],
        ciphertext_size=raw["ciphertext_size"],
        ciphertext_hash=_b(raw["ciphertext_hash"]),
        series_uid=raw["series_uid"],
        instance_uid=raw["instance_uid"],
    )


def op_manifest_seal(i: Inputs) -> Outputs:
    sealed = study.seal_manifest(
        c.StudyKey(_b(i["study_key"])),
        _b(i["study_id"]),
        i["manifest_version"],
        [_entry(e) for e in i["entries"]],
        account_from_seed(i["signer_seed"]),
        _rng(i),
    )
    return {"sealed": sealed.hex()}


def op_manifest_open(i: Inputs) -> Outputs:
    trusted = {account_from_seed(s).public.ed25519 for s in i["trusted_signer_seeds"]}
    manifest = study.open_manifest(
        c.StudyKey(_b(i["study_key"])), _b(i["study_id"]), _b(i["sealed"]), trusted
    )
    return {
        "manifest_version": manifest.manifest_version,
        "signer": manifest.signer.hex(),
        "file_ids": [e.file_id.hex() for e in manifest.entries],
    }


def op_study_uid_tag(i: Inputs) -> Outputs:
    keys = account_from_seed(i["account_seed"])
    return {"tag": study.study_uid_tag(keys.account_key, i["study_instance_uid"]).hex()}


def op_grant_seal(i: Inputs) -> Outputs:
    granter = account_from_seed(i["granter_seed"])
    recipient = account.open_public_keys(_b(i["recipient_public_keys"]))
    sealed = share.seal_grant(
        granter,
        recipient,
        _b(i["study_id"]),
        c.StudyKey(_b(i["study_key"])),
        i["permission"],
        i["expires_at"],
        _rng(i),
    )
    return {"grant": sealed.hex()}


def op_grant_open(i: Inputs) -> Outputs:
    opened = share.open_grant(_b(i["grant"]), account_from_seed(i["recipient_seed"]))
    return {
        "study_id": opened.study_id.hex(),
        "study_key_matches": opened.study_key == c.StudyKey(_b(i["expected_study_key"])),
        "permission": opened.permission,
        "expires_at": opened.expires_at,
        "granter": opened.granter.hex(),
    }


def op_grant_info(i: Inputs) -> Outputs:
    env = share.grant_info(_b(i["grant"]))
    return {
        "study_id": env.study_id.hex(),
        "recipient": env.recipient.hex(),
        "granter": env.granter.hex(),
        "permission": env.permission,
        "expires_at": env.expires_at,
    }


def op_link_info(i: Inputs) -> Outputs:
    env = link.link_info(_b(i["envelope"]))
    return {
        "link_id": env.link_id.hex(),
        "study_id": env.study_id.hex(),
        "creator": env.creator.hex(),
        "permission": env.permission,
        "expires_at": env.expires_at,
    }


def op_note_seal(i: Inputs) -> Outputs:
    sealed = note.seal_note(
        c.StudyKey(_b(i["study_key"])), _b(i["study_id"]), _b(i["share_id"]), i["text"], _rng(i)
    )
    return {"sealed": sealed.hex()}


def op_note_open(i: Inputs) -> Outputs:
    text = note.open_note(
        c.StudyKey(_b(i["study_key"])), _b(i["study_id"]), _b(i["share_id"]), _b(i["sealed"])
    )
    return {"text": text}


def _access(i: Inputs) -> link.LinkAccess:
    secret, password_required = link.parse_fragment(i["fragment"])
    password = i.get("password")
    if password_required and password is None:
        raise ValueError("vector lacks the link password")
    return link.link_access(secret, password if password_required else None)


def op_link_fragment(i: Inputs) -> Outputs:
    secret, password_required = link.parse_fragment(i["fragment"])
    return {
        "password_required": password_required,
        "reencoded": link.encode_fragment(secret, password_required=password_required),
    }


def op_link_access(i: Inputs) -> Outputs:
    access = _access(i)
    return {"access_key": access.access_key.hex(), "verifier": access.verifier.hex()}


def op_link_seal(i: Inputs) -> Outputs:
    sealed = link.seal_link(
        account_from_seed(i["creator_seed"]),
        _access(i),
        _b(i["link_id"]),
        _b(i["study_id"]),
        c.StudyKey(_b(i["study_key"])),
        i["permission"],
        i["expires_at"],
        _rng(i),
    )
    return {"envelope": sealed.hex()}


def op_link_open(i: Inputs) -> Outputs:
    opened = link.open_link(_b(i["envelope"]), _b(i["link_id"]), _access(i))
    return {
        "study_id": opened.study_id.hex(),
        "study_key_matches": opened.study_key == c.StudyKey(_b(i["expected_study_key"])),
        "permission": opened.permission,
        "creator": opened.creator.hex(),
    }


OPERATIONS: dict[str, Callable[[Inputs], Outputs]] = {
    "kdf.password_keys": op_password_keys,
    "account.create": op_account_create,
    "account.unlock_password": op_unlock_password,
    "account.change_password": op_change_password,
    "account.recovery_slot": op_recovery_slot,
    "account.unlock_recovery": op_unlock_recovery,
    "account.unlock_passkey": op_unlock_passkey,
    "account.public_keys_open": op_public_keys_open,
    "recovery.format": op_recovery_format,
    "recovery.parse_text": op_recovery_parse,
    "recovery.parse_file": op_recovery_parse_file,
    "stream.seal": op_stream_seal,
    "stream.open": op_stream_open,
    "stream.open_chunk": op_stream_open_chunk,
    "stream.open_instance": op_stream_open_instance,
    "study.key_wrap": op_study_key_wrap,
    "study.key_unwrap": op_study_key_unwrap,
    "study.metadata_seal": op_metadata_seal,
    "study.metadata_open": op_metadata_open,
    "study.manifest_seal": op_manifest_seal,
    "study.manifest_open": op_manifest_open,
    "study.uid_tag": op_study_uid_tag,
    "grant.seal": op_grant_seal,
    "grant.open": op_grant_open,
    "grant.info": op_grant_info,
    "note.seal": op_note_seal,
    "note.open": op_note_open,
    "link.fragment": op_link_fragment,
    "link.access": op_link_access,
    "link.seal": op_link_seal,
    "link.open": op_link_open,
    "link.info": op_link_info,
}


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    """Run one case; the result says whether it behaved exactly as the vector expects."""
    name = case["name"]
    expect = case["expect"]
    try:
        outputs = OPERATIONS[case["op"]](case["inputs"])
    except c.CryptoError as error:
        got = type(error).__name__
        if got == expect:
            return {"name": name, "ok": True, "detail": got}
        return {"name": name, "ok": False, "detail": f"expected {expect}, raised {got}"}
    if expect != "ok":
        return {"name": name, "ok": False, "detail": f"expected {expect}, succeeded"}
    if outputs != case["outputs"]:
        wrong = sorted(
            k
            for k in set(outputs) | set(case["outputs"])
            if outputs.get(k) != case["outputs"].get(k)
        )
        return {"name": name, "ok": False, "detail": f"outputs differ: {wrong}"}
    return {"name": name, "ok": True, "detail": "ok"}


def run(argument: str) -> str:
    """Entry point shared by pytest (CPython) and the Pyodide hosts: JSON in, JSON out."""
    cases = json.loads(argument)
    return json.dumps([run_case(case) for case in cases])

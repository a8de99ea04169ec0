"""Cross-backend check: what one runtime seals with fresh randomness, the other must open.

``seal_samples`` seals one object of every format with the system CSPRNG of the runtime it
runs on and returns them with the secrets needed to open them; ``open_samples`` opens that
bundle and returns what came out. pytest runs the pair both ways: CPython -> Pyodide and
Pyodide -> CPython. Stdlib plus ``securepacs.crypto`` only, like runner.py.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import runner

import securepacs.crypto as c
from securepacs.crypto import account, kdf, link, share, stream, study

_SIZES = (0, 1, 4095, 4096, 4097, 3 * 4096 + 5, 300_000)
_SHARE_ID = hashlib.sha256(b"cross/share").digest()[:16]
_NOTE = "Bitte ansehen: L\u00e4sion \u2013 \U0001f4cb"


def _payload(size: int) -> bytes:
    return hashlib.shake_256(f"cross/{size}".encode()).digest(size)


def seal_samples(argument: str) -> str:
    """Seal every format with this runtime's CSPRNG; JSON of the sealed objects and keys."""
    params: dict[str, Any] = json.loads(argument)
    owner = runner.account_from_seed(params["owner_seed"])
    recipient = runner.account_from_seed(params["recipient_seed"])
    study_key = c.new_study_key()
    study_id = c.new_study_id()
    streams: list[dict[str, Any]] = []
    for size in _SIZES:
        sealer = c.StreamSealer.new(study_key, chunk_log2=12)
        sealed = b"".join(sealer.seal([_payload(size)]))
        streams.append({"size": size, "file_id": sealer.file_id.hex(), "sealed": sealed.hex()})
    entry = c.ManifestEntry(
        file_id=bytes.fromhex(streams[0]["file_id"]),
        plaintext_size=0,
        ciphertext_size=len(bytes.fromhex(streams[0]["sealed"])),
        ciphertext_hash=c.ciphertext_hash(bytes.fromhex(streams[0]["sealed"])),
        series_uid="1.2.3",
        instance_uid="1.2.3.4",
    )
    secret = c.new_link_secret()
    link_id = c.new_link_id()
    recovery_key = c.new_recovery_key()
    with kdf.insecure_kdf_floor_for_tests():
        cheap = kdf.new_kdf_params(opslimit=1, memlimit_kib=8)
        password_keys, password_slot = account.change_password(owner, "pässword", kdf=cheap)
    return json.dumps(
        {
            "backend": _backend_name(),
            "owner_seed": params["owner_seed"],
            "recipient_seed": params["recipient_seed"],
            "study_key": study_key._material.hex(),
            "study_id": study_id.hex(),
            "streams": streams,
            "wrapped": c.wrap_study_key(owner.account_key, study_id, study_key).hex(),
            "metadata": c.seal_metadata(study_key, study_id, b"\x81\xa4Name\xa3DOE").hex(),
            "note": c.seal_note(study_key, study_id, _SHARE_ID, _NOTE).hex(),
            "manifest": c.seal_manifest(study_key, study_id, 1, [entry], owner).hex(),
            "grant": c.seal_grant(
                owner, recipient.public, study_id, study_key, c.PERMISSION_EDIT, 0
            ).hex(),
            "fragment": c.encode_fragment(secret, password_required=False),
            "link_id": link_id.hex(),
            "link": link.seal_link(
                owner, link.link_access(secret, None), link_id, study_id, study_key, 1, 0
            ).hex(),
            "password_slot": password_slot.hex(),
            "auth_key": password_keys.auth_key.to_bytes().hex(),
            "recovery_text": c.recovery_text(recovery_key),
            "recovery_slot": c.seal_slot(owner, recovery_key).hex(),
        }
    )


def _backend_name() -> str:
    from securepacs.crypto._backend import get_backend

    return get_backend().name


def open_samples(argument: str) -> str:
    """Open a bundle from :func:`seal_samples`; JSON of digests of everything recovered."""
    bundle: dict[str, Any] = json.loads(argument)
    owner = runner.account_from_seed(bundle["owner_seed"])
    recipient = runner.account_from_seed(bundle["recipient_seed"])
    study_key = c.StudyKey(bytes.fromhex(bundle["study_key"]))
    study_id = bytes.fromhex(bundle["study_id"])
    opened_streams = []
    for item in bundle["streams"]:
        plain = b"".join(
            c.open_stream(
                study_key, bytes.fromhex(item["file_id"]), [bytes.fromhex(item["sealed"])]
            )
        )
        opened_streams.append(plain == _payload(item["size"]))
    manifest = c.open_manifest(
        study_key, study_id, bytes.fromhex(bundle["manifest"]), {owner.public.ed25519}
    )
    grant = c.open_grant(bytes.fromhex(bundle["grant"]), recipient)
    secret, _ = c.parse_fragment(bundle["fragment"])
    opened_link = c.open_link(
        bytes.fromhex(bundle["link"]), bytes.fromhex(bundle["link_id"]), c.link_access(secret, None)
    )
    with kdf.insecure_kdf_floor_for_tests():
        unlocked, password_keys = account.unlock_with_password(
            "pässword", bytes.fromhex(bundle["password_slot"])
        )
    recovered = account.unlock_with_secret(
        [bytes.fromhex(bundle["recovery_slot"])], c.parse_recovery_text(bundle["recovery_text"])
    )
    return json.dumps(
        {
            "streams": opened_streams,
            "wrapped": study.unwrap_study_key(
                owner.account_key, study_id, bytes.fromhex(bundle["wrapped"])
            )
            == study_key,
            "metadata": c.open_metadata(
                study_key, study_id, bytes.fromhex(bundle["metadata"])
            ).hex(),
            "note": c.open_note(study_key, study_id, _SHARE_ID, bytes.fromhex(bundle["note"])),
            "manifest_entries": len(manifest.entries),
            "grant": [grant.study_key == study_key, grant.permission],
            "link": opened_link.study_key == study_key,
            "password": [
                unlocked.public == owner.public,
                password_keys.auth_key.to_bytes().hex() == bundle["auth_key"],
            ],
            "recovery": recovered.public == owner.public,
            "chunked_random_access": _random_access(study_key, bundle["streams"][-1]),
        }
    )


def _random_access(study_key: c.StudyKey, item: dict[str, Any]) -> bool:
    sealed = bytes.fromhex(item["sealed"])
    opener = stream.StreamOpener(study_key, bytes.fromhex(item["file_id"]), sealed[:24])
    count = opener.chunk_count(len(sealed))
    plain = _payload(item["size"])
    for index in reversed(range(count)):
        offset, length = opener.chunk_span(index, len(sealed))
        chunk = opener.open_chunk(index, sealed[offset : offset + length], last=index == count - 1)
        if chunk != plain[index * 4096 : (index + 1) * 4096]:
            return False
    return True


EXPECTED_OPENED = {
    "streams": [True] * len(_SIZES),
    "wrapped": True,
    "metadata": b"\x81\xa4Name\xa3DOE".hex(),
    "note": _NOTE,
    "manifest_entries": 1,
    "grant": [True, share.PERMISSION_EDIT],
    "link": True,
    "password": [True, True],
    "recovery": True,
    "chunked_random_access": True,
}

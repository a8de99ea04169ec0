"""The client core on a folder of DICOM, deterministically, for comparing CPython with Pyodide.

Shipped into Pyodide as source; the client core itself comes from the browser wheel. :func:`run`
takes ``{"files": {name: base64}, "study_key": hex, "file_id": hex}`` as JSON, writes the files
to a fresh folder, scans it with ``securepacs.client.dicom.scan_folder``, seals every instance
with ``SealedInstance`` under the given study key and file id (the same inputs give the same
ciphertext on every runtime), and answers what the scan found and what each sealed stream is.
"""

from __future__ import annotations

import base64
import hashlib
import json
import tempfile
from pathlib import Path

import msgspec

from securepacs.client.dicom import scan_folder
from securepacs.client.sealing import SealedInstance
from securepacs.crypto import StudyKey

__all__ = ("run",)


def run(argument: str) -> str:
    """Scan and seal the files of ``argument``; JSON of the results, keyed by file name."""
    request = json.loads(argument)
    key = StudyKey(bytes.fromhex(request["study_key"]))
    file_id = bytes.fromhex(request["file_id"])
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for name, data in request["files"].items():
            (folder / name).write_bytes(base64.b64decode(data))
        report = scan_folder(folder)

        def name_of(path: str) -> str:
            return Path(path).relative_to(folder).as_posix()

        instances = {}
        for study in report.studies.values():
            for members in study.series.values():
                for instance in members:
                    sealed = SealedInstance(key, instance, file_id=file_id)
                    stream = b"".join(sealed.chunks())
                    entry = sealed.entry
                    instances[name_of(instance.path)] = {
                        "instance": msgspec.to_builtins(msgspec.structs.replace(instance, path="")),
                        "sealed_sha256": hashlib.sha256(stream).hexdigest(),
                        "entry": msgspec.to_builtins(entry, enc_hook=bytes.hex),
                    }
        answer = {
            "studies": {
                uid: msgspec.to_builtins(study.attributes) for uid, study in report.studies.items()
            },
            "instances": instances,
            "unsupported": sorted(name_of(path) for path in report.unsupported),
            "broken": sorted(name_of(path) for path, _ in report.broken),
            "indexes": sorted(name_of(path) for path in report.indexes),
        }
    return json.dumps(answer, sort_keys=True)


async def whole(argument: str) -> str:
    """Seal each file whole and hash it with WebCrypto (Pyodide only): the entries must equal
    those of the streaming path, which hashes with hashlib as it seals."""
    from securepacs.client import webcrypto  # importable in Pyodide only

    request = json.loads(argument)
    key = StudyKey(bytes.fromhex(request["study_key"]))
    file_id = bytes.fromhex(request["file_id"])
    answer = {}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for name, data in request["files"].items():
            (folder / name).write_bytes(base64.b64decode(data))
        for instance in (
            i for s in scan_folder(folder).studies.values() for m in s.series.values() for i in m
        ):
            streamed = SealedInstance(key, instance, file_id=file_id)
            stream = b"".join(streamed.chunks())
            sealed = SealedInstance(key, instance, file_id=file_id)
            data = sealed.seal_whole()
            entry = sealed.entry_for(await webcrypto.sha256(data))
            answer[Path(instance.path).name] = data == stream and entry == streamed.entry
    answer["empty"] = (await webcrypto.sha256(b"")).hex() == hashlib.sha256(b"").hexdigest()
    return json.dumps(answer, sort_keys=True)

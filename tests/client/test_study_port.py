"""The study ports of the browser worker (client/study_port.py, worker_session.port).

A viewer or download window asks for a study's files through a port the worker binds to one
study. These tests send the port's JSON requests through ``worker_session.port`` as the worker's
JavaScript does, against a real server: the view lists the signed manifest, whole reads and
streamed pieces give the uploaded files byte for byte, a port reads nothing of another study,
and a blob changed on the server is refused with a message naming the instance.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from typing import TYPE_CHECKING, Any

import pydicom
import pytest

from securepacs.client import worker_session
from securepacs.client.download import IntegrityError
from securepacs.client.httpx_transport import HttpxTransport
from securepacs.client.study_port import MANY_BYTES, StudyPorts
from securepacs.client.transport import TransportResponse
from securepacs.client.worker_session import Session, configure
from securepacs.crypto.stream import content_key, open_instance
from tests.client.test_worker_session import (
    Events,
    Stack,
    _new_account,
    _ok,
    _two_studies,
    _upload,
    anyio_backend,
    stack,
)

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

__all__ = ("anyio_backend", "stack")  # the module's fixtures, shared with the session tests

pytestmark = pytest.mark.anyio


async def _port(study_id: str, op: str, **fields: Any) -> Any:
    """One port request as the worker sends it; bytes come back as bytes, the rest as JSON."""
    result = await worker_session.port(study_id, json.dumps({"op": op, **fields}))
    if isinstance(result, bytes):
        return result
    assert isinstance(result, str)
    answered: dict[str, Any] = json.loads(result)
    return answered


async def _value(study_id: str, op: str, **fields: Any) -> Any:
    answered = await _port(study_id, op, **fields)
    if isinstance(answered, bytes):
        return answered
    assert answered["ok"] is True, answered
    return answered["value"]


async def _error(study_id: str, op: str, **fields: Any) -> dict[str, Any]:
    answered = await _port(study_id, op, **fields)
    assert isinstance(answered, dict)
    assert answered["ok"] is False, answered
    error: dict[str, Any] = answered["error"]
    assert error["message"]
    return error


def _originals(folder: Path) -> dict[str, bytes]:
    """The uploaded files by SOP Instance UID."""
    files: dict[str, bytes] = {}
    for path in folder.iterdir():
        data = path.read_bytes()
        files[str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)] = data
    return files


async def _study_ids(session: Session) -> list[str]:
    await _ok(session, "load_studies")
    rows = (await _ok(session, "search", filters={}))["rows"]
    return [row["study_id"] for row in rows]


class Tampering(HttpxTransport):
    """A server that flips one byte of every blob it serves, one by one or in a batch."""

    async def send(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> TransportResponse:
        response = await super().send(method, path, content=content, headers=headers)
        if path.startswith("/api/v1/blobs/") and len(response.body) > 40:
            body = bytearray(response.body)
            body[40] ^= 1
            return TransportResponse(response.status, bytes(body), response.retry_after)
        return response


async def test_study_port_serves_the_signed_files_of_its_study_and_no_other(
    stack: Stack, tmp_path: Path
) -> None:
    folder = _two_studies(tmp_path)
    # A multi-chunk file too, so that a stream has more than one piece.
    shutil.copyfile(folder / "CT_small.dcm", tmp_path / "ct.dcm")
    big = pydicom.dcmread(tmp_path / "ct.dcm")
    big.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.7001"
    big.add_new(0xFFFCFFFC, "OB", bytes(9 * 1024 * 1024))  # Data Set Trailing Padding
    big.save_as(folder / "big.dcm")
    originals = _originals(folder)
    async with HttpxTransport(stack.url) as transport:
        configure(transport, Events())
        session = worker_session._session
        assert session is not None
        signed_out = await _error("0" * 32, "open")
        assert "signed out" in signed_out["message"]

        email = "port@example.org"
        session_made = await _new_account(stack, transport, email)
        worker_session._session = session_made
        await _upload(session_made, folder)
        first, second = await _study_ids(session_made)
        for study_id in (first, second):
            assert await _ok(session_made, "open_study", study_id=study_id) is None

        views = {sid: await _value(sid, "open") for sid in (first, second)}
        seen: dict[str, bytes] = {}
        for study_id, view in views.items():
            assert view["studyId"] == study_id
            assert view["canDownload"] is True
            assert view["zipName"].endswith(".zip")
            assert set(view["zipPaths"]) == {i["fileId"] for i in view["instances"]}
            for instance in view["instances"]:
                assert instance["instanceUid"] in originals
                whole = await _value(study_id, "read", fileId=instance["fileId"])
                assert len(whole) == instance["size"]
                assert (
                    view["zipPaths"][instance["fileId"]]
                    == f"{instance['seriesUid']}/{instance['instanceUid']}.dcm"
                )
                handle = await _value(study_id, "stream", fileId=instance["fileId"])
                pieces = []
                while (piece := await _value(study_id, "next", handle=handle)) is not None:
                    assert isinstance(piece, bytes)
                    assert 0 < len(piece) <= 8 * 1024 * 1024
                    pieces.append(piece)
                assert b"".join(pieces) == whole
                if instance["size"] > 8 * 1024 * 1024:
                    assert len(pieces) > 1
                seen[instance["instanceUid"]] = whole
        assert seen == originals

        # A group of files in one answer, in the order asked (the download's small files).
        for study_id, view in views.items():
            ids = [i["fileId"] for i in reversed(view["instances"])]
            together = await worker_session.port(
                study_id, json.dumps({"op": "readMany", "fileIds": ids})
            )
            assert together == [seen[i["instanceUid"]] for i in reversed(view["instances"])]
        big_view = next(v for v in views.values() if len(v["instances"]) > 1)
        too_much = [i["fileId"] for i in big_view["instances"]] * 2
        assert (
            "Too much"
            in (await _error(big_view["studyId"], "readMany", fileIds=too_much))["message"]
        )

        # A port is bound to its study: the other study's files are not part of it.
        other = views[second]["instances"][0]["fileId"]
        refused = await _error(first, "read", fileId=other)
        assert refused["kind"] == "input"
        assert "not part of" in refused["message"]
        stopped = await _error(first, "next", handle=999)
        assert "Start it again" in stopped["message"]
        unknown = await _error(first, "delete")
        assert unknown["kind"] == "input"

        # A download closed half-way drops the stream's state.
        [big_entry] = [
            i for v in views.values() for i in v["instances"] if i["size"] > 8 * 1024 * 1024
        ]
        study_of_big = next(s for s, v in views.items() if big_entry in v["instances"])
        handle = await _value(study_of_big, "stream", fileId=big_entry["fileId"])
        assert isinstance(await _value(study_of_big, "next", handle=handle), bytes)
        assert await _value(study_of_big, "close", handle=handle) is None
        assert "Start it again" in (await _error(study_of_big, "next", handle=handle))["message"]

        # Signing out ends every port at once.
        await _ok(session_made, "logout")
        assert "signed out" in (await _error(first, "open"))["message"]


async def test_study_port_refuses_a_blob_changed_on_the_server(
    stack: Stack, tmp_path: Path
) -> None:
    folder = _two_studies(tmp_path)
    async with HttpxTransport(stack.url) as transport:
        session = await _new_account(stack, transport, "tamper@example.org")
        await _upload(session, folder)
        [study_id, _] = await _study_ids(session)
        cookie = transport.session
    async with Tampering(stack.url, session=cookie) as evil:
        lied_to = Session(evil, Events())
        worker_session._session = lied_to
        await _ok(lied_to, "unlock", password="worker session pw 1")
        await _ok(lied_to, "open_study", study_id=study_id)
        view = await _value(study_id, "open")
        file_id = view["instances"][0]["fileId"]
        error = await _error(study_id, "read", fileId=file_id)
        assert error["kind"] == "integrity"
        assert view["instances"][0]["instanceUid"] in error["message"]
        assert "failed verification" in error["message"]
        handle = await _value(study_id, "stream", fileId=file_id)
        streamed = await _error(study_id, "next", handle=handle)
        assert streamed["kind"] == "integrity"


async def test_study_port_checks_a_hash_computed_outside_python_like_its_own(
    stack: Stack, tmp_path: Path
) -> None:
    """The browser hashes read-ahead ciphertexts with WebCrypto (the ``digest`` seam)."""
    folder = _two_studies(tmp_path)
    originals = _originals(folder)

    async def honest(data: bytes) -> bytes:
        return hashlib.sha256(data).digest()

    async def lying(data: bytes) -> bytes:
        return bytes(32)

    async with HttpxTransport(stack.url) as transport:
        session = await _new_account(stack, transport, "digest@example.org")
        await _upload(session, folder)
        [study_id, _] = await _study_ids(session)
        assert session.unlocked is not None
        for digest, works in ((honest, True), (lying, False)):
            ports = StudyPorts(session.api, session.unlocked.keys, digest=digest)
            view = await ports.view(study_id)
            [instance] = view["instances"]
            if works:
                data = await ports.read(study_id, instance["fileId"])
                assert data == originals[instance["instanceUid"]]
            else:
                with pytest.raises(IntegrityError, match="failed verification"):
                    await ports.read(study_id, instance["fileId"])


async def test_read_plan_lets_the_worker_read_a_group_and_no_window_asks_for_it(
    stack: Stack, tmp_path: Path
) -> None:
    """The plan of a readMany (protocol.md §14.5): its request, sent as the worker's fetch
    sends it, returns the sealed files, which open with the plan's keys to the originals."""
    folder = _two_studies(tmp_path)
    originals = _originals(folder)
    async with HttpxTransport(stack.url) as transport:
        session = await _new_account(stack, transport, "plan@example.org")
        worker_session._session = session
        await _upload(session, folder)
        study_id = max(await _study_ids(session), key=len)
        view = await _value(study_id, "open")
        ids = [i["fileId"] for i in view["instances"]]
        ports = session.ports
        assert ports is not None
        opened = await ports.study(study_id)

        for kind, download in (("download", True), ("viewer", False)):
            plan = await worker_session.read_plan(study_id, json.dumps(ids), kind)
            assert plan is not None
            assert json.loads(plan["body"]) == {"ids": ids, "download": download}
            response = await transport.send(
                "POST", plan["path"], content=plan["body"], headers=plan["headers"]
            )
            assert response.status == 200
            sealed = response.body
            assert len(sealed) == sum(f["ciphertextSize"] for f in plan["files"])
            offset = 0
            for instance, file in zip(view["instances"], plan["files"], strict=True):
                part = sealed[offset : offset + file["ciphertextSize"]]
                offset += file["ciphertextSize"]
                assert file["fileId"].hex() == instance["fileId"]
                assert file["plaintextSize"] == instance["size"]
                assert hashlib.sha256(part).digest() == file["ciphertextHash"]
                key = content_key(opened.study_key, file["fileId"]).to_bytes()
                assert file["contentKey"] == key
                entry = ports.entries[study_id][instance["fileId"]]
                plaintext = b"".join(open_instance(opened.study_key, entry, [part]))
                assert plaintext == originals[instance["instanceUid"]]

        # No plan where the port's own answer would be an error; that answer then says why.
        other = next(s for s in await _study_ids(session) if s != study_id)
        assert await worker_session.read_plan(other, json.dumps(ids), "download") is None
        total = sum(i["size"] for i in view["instances"])
        too_much = ids * (MANY_BYTES // total + 1)
        assert await worker_session.read_plan(study_id, json.dumps(too_much), "viewer") is None
        # A window cannot ask its port for keys: the port knows no such request.
        refused = await _error(study_id, "read_plan", fileIds=ids)
        assert refused["kind"] == "input"
        await _ok(session, "logout")
        assert await worker_session.read_plan(study_id, json.dumps(ids), "download") is None

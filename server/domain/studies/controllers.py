"""HTTP routes of blobs and studies (``/api/v1``): thin; the rules live in StudyService.

Parts travel as raw ``application/octet-stream`` with an RFC 9530 ``Content-Digest: sha-256``
header; downloads honour a single HTTP ``Range``. Every id in a path is opaque (a random file or
study id); the access log records the route template, never the path.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import TYPE_CHECKING, Annotated, Any, Final

import msgspec
from litestar import Controller, Request, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, PathParameter, QueryParameter
from litestar.response import Stream
from litestar.status_codes import HTTP_204_NO_CONTENT

from securepacs.server.domain.accounts.services import SignedIn
from securepacs.server.domain.studies.schemas import (
    BLOB_ID,
    BatchItem,
    BatchResult,
    BlobStatus,
    CommitBatch,
    CommitOutcomes,
    CommitRequest,
    CreateBlobRequest,
    LookupRequest,
    LookupResponse,
    ReadRequest,
    StatsResponse,
    StudyDetail,
    StudyPage,
)
from securepacs.server.domain.studies.services import PART_SIZE, StudyService
from securepacs.server.errors import ChecksumMismatch, InvalidInput, RangeNotSatisfiable

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from securepacs.server.db.models import Blob

__all__ = (
    "BlobController",
    "StudyController",
    "blob_response",
    "parse_range",
    "read_many_response",
)

Service = NamedDependency[StudyService]
Me = NamedDependency[SignedIn]
# Blob and study ids in paths: 32 lowercase hex digits, refused before any handler runs.
HexId = Annotated[str, PathParameter(pattern=BLOB_ID)]
_DIGEST: Final = re.compile(r"(?:^|,)\s*sha-256=:([A-Za-z0-9+/=]+):")
_RANGE: Final = re.compile(r"bytes=(\d*)-(\d*)")
# A part plus headroom for the request line and headers Litestar counts with the body.
_PART_BODY_LIMIT: Final = PART_SIZE + 64 * 1024
# A batch: up to a part's worth of data plus msgpack framing of up to 512 items.
_BATCH_BODY_LIMIT: Final = PART_SIZE + 512 * 64 + 64 * 1024
_BATCH: Final = msgspec.msgpack.Decoder(list[BatchItem])


def _declared_sha256(request: Request[Any, Any, Any]) -> bytes | None:
    header = request.headers.get("content-digest")
    if header is None:
        return None
    match = _DIGEST.search(header)
    if match is None:
        raise InvalidInput("Content-Digest must carry a sha-256 value (RFC 9530).")
    try:
        digest = base64.b64decode(match.group(1), validate=True)
    except binascii.Error:
        raise ChecksumMismatch from None
    if len(digest) != 32:
        raise ChecksumMismatch
    return digest


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end_exclusive)`` of a single ``bytes=`` range, None for the whole blob.

    Raises:
        RangeNotSatisfiable: the range lies outside the blob or is malformed.
    """
    if header is None:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        raise RangeNotSatisfiable
    first, last = match.groups()
    if first == "":
        start, end = max(0, size - int(last)), size  # a suffix: the last N bytes
    else:
        start = int(first)
        end = size if last == "" else min(size, int(last) + 1)
    if start >= size or start >= end:
        raise RangeNotSatisfiable
    return start, end


def read_many_response(service: StudyService, blobs: list[Blob]) -> Stream:
    """Whole blobs one after the other, streamed from the store."""

    async def body() -> AsyncIterator[bytes]:
        for blob in blobs:
            async for piece in service.read(blob, 0, blob.size):
                yield piece

    return Stream(
        body(),
        media_type="application/octet-stream",
        headers={
            "Content-Length": str(sum(blob.size for blob in blobs)),
            "Cache-Control": "private, no-store",
        },
    )


def blob_response(service: StudyService, blob: Blob, range_header: str | None) -> Stream:
    """One blob, whole or the single range asked for."""
    span = parse_range(range_header, blob.size)
    start, end = span or (0, blob.size)
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(end - start),
        # Access can be revoked at any moment; no cache may keep a copy to serve later.
        "Cache-Control": "private, no-store",
        "ETag": f'"{blob.id}"',
    }
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{blob.size}"
    return Stream(
        service.read(blob, start, end),
        status_code=206 if span is not None else 200,
        media_type="application/octet-stream",
        headers=headers,
    )


class BlobController(Controller):
    """Sealed instances: reserve, send parts, complete, download."""

    path = "/api/v1/blobs"
    tags = ["blobs"]  # noqa: RUF012 -- Litestar reads a plain class attribute

    @post("/batch", status_code=200, request_max_body_size=_BATCH_BODY_LIMIT)
    async def put_batch(
        self, request: Request[Any, Any, Any], studies: Service, me: Me
    ) -> BatchResult:
        """Many one-part blobs in one request: a msgpack array of [id, sha256, bytes]."""
        try:
            items = _BATCH.decode(await request.body())
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise InvalidInput("The batch is not in the expected format.") from None
        return await studies.put_batch(me.account, items)

    @post("/read", status_code=200)
    async def read_many(self, data: JSONBody[ReadRequest], studies: Service, me: Me) -> Stream:
        """Whole blobs in the order asked, one after the other (each client knows the sizes).

        One request and one authorization for the files a viewer or download reads next,
        instead of one per file; the body streams from the store, so its size is bounded by
        the number of ids only.
        """
        blobs = await studies.readable_blobs(me.account, data.ids, download=data.download)
        return read_many_response(studies, blobs)

    @post("/{blob_id:str}", status_code=200)
    async def create(
        self,
        blob_id: HexId,
        data: JSONBody[CreateBlobRequest],
        studies: Service,
        me: Me,
    ) -> BlobStatus:
        """Reserve storage for a blob, or see which parts of it have arrived."""
        return await studies.create_blob(me.account, blob_id, data.size)

    @put("/{blob_id:str}", status_code=200, request_max_body_size=_PART_BODY_LIMIT)
    async def put_whole(
        self,
        request: Request[Any, Any, Any],
        blob_id: HexId,
        studies: Service,
        me: Me,
    ) -> BlobStatus:
        """Reserve, store and complete a blob of at most one part, in one request."""
        digest = _declared_sha256(request)
        return await studies.put_whole(me.account, blob_id, await request.body(), digest)

    @put(
        "/{blob_id:str}/parts/{number:int}",
        status_code=200,
        request_max_body_size=_PART_BODY_LIMIT,
    )
    async def put_part(
        self,
        request: Request[Any, Any, Any],
        blob_id: HexId,
        number: FromPath[int],
        studies: Service,
        me: Me,
    ) -> BlobStatus:
        """Store one part (idempotent: a retry sends the same bytes again)."""
        digest = _declared_sha256(request)
        return await studies.put_part(me.account, blob_id, number, await request.body(), digest)

    @post("/{blob_id:str}/complete", status_code=200)
    async def complete(
        self,
        blob_id: HexId,
        studies: Service,
        me: Me,
    ) -> BlobStatus:
        """Finish a blob once all its parts arrived."""
        return await studies.complete(me.account, blob_id)

    @get("/{blob_id:str}")
    async def download(
        self,
        request: Request[Any, Any, Any],
        blob_id: HexId,
        studies: Service,
        me: Me,
        download: FromQuery[bool] = False,
    ) -> Stream:
        """The ciphertext, whole or one byte range; ``download`` for a download's reads."""
        blob = await studies.readable_blob(me.account, blob_id, download=download)
        return blob_response(studies, blob, request.headers.get("range"))

    @delete("/{blob_id:str}", status_code=HTTP_204_NO_CONTENT)
    async def abandon(
        self,
        blob_id: HexId,
        studies: Service,
        me: Me,
    ) -> None:
        """Cancel an upload no study holds and free its space."""
        await studies.abandon_blob(me.account, blob_id)


class StudyController(Controller):
    """Committed studies: list, look up by UID tag, commit, read, delete; statistics."""

    path = "/api/v1/studies"
    tags = ["studies"]  # noqa: RUF012 -- Litestar reads a plain class attribute

    @get("/")
    async def list_studies(
        self,
        studies: Service,
        me: Me,
        after: Annotated[str | None, QueryParameter(pattern=BLOB_ID)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=5000)] = 1000,
        source: Annotated[str, QueryParameter(pattern="^(mine|shared)$")] = "mine",
    ) -> StudyPage:
        """My studies, or the studies shared with me, a page at a time."""
        return await studies.page(me.account, after, limit, source)

    @post("/lookup", status_code=200)
    async def lookup(
        self, data: JSONBody[LookupRequest], studies: Service, me: Me
    ) -> LookupResponse:
        """Which of these UID tags are already studies of mine."""
        return LookupResponse(studies=await studies.lookup(me.account, data.uid_tags))

    @get("/stats")
    async def stats(self, studies: Service, me: Me) -> StatsResponse:
        """Studies, files, used storage and the limit."""
        return await studies.stats(me.account)

    @put("/{study_id:str}", status_code=200, request_max_body_size=64 * 1024 * 1024)
    async def commit(
        self,
        study_id: HexId,
        data: JSONBody[CommitRequest],
        studies: Service,
        me: Me,
    ) -> StudyDetail:
        """Make the study (or its next manifest version) visible, all or nothing."""
        return await studies.commit(me.account, study_id, data)

    @post("/commits", status_code=200, request_max_body_size=64 * 1024 * 1024)
    async def commit_many(
        self, data: JSONBody[CommitBatch], studies: Service, me: Me
    ) -> CommitOutcomes:
        """Commit up to 100 studies, each all or nothing on its own; one outcome per study."""
        return await studies.commit_many(me.account, data.commits)

    @get("/{study_id:str}")
    async def detail(
        self,
        study_id: HexId,
        studies: Service,
        me: Me,
    ) -> StudyDetail:
        """One study with its manifest and blob ids."""
        return await studies.detail(me.account, study_id)

    @delete("/{study_id:str}", status_code=HTTP_204_NO_CONTENT)
    async def remove(
        self,
        study_id: HexId,
        studies: Service,
        me: Me,
    ) -> None:
        """Delete the study and its blobs."""
        await studies.delete_study(me.account, study_id)

"""The rules of blind study storage: reserve, receive parts, complete, commit, serve, delete.

Nothing here can read what it stores. The server checks shapes, sizes, ownership, the storage
limit and the per-part SHA-256 the client declares (transport damage, not tampering: the client
verifies content against the signed manifest). A study becomes visible in one transaction, and
only when every blob it lists is complete, so an interrupted upload never shows half a study.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from securepacs.crypto import PERMISSION_DOWNLOAD, PERMISSION_EDIT, PERMISSION_VIEW
from securepacs.server.db.base import utcnow
from securepacs.server.db.models import (
    Account,
    Blob,
    BlobPart,
    BlobState,
    Endorsement,
    Link,
    Share,
    Study,
)
from securepacs.server.domain.studies.access import (
    Access,
    account_access,
    account_permissions,
    epoch,
    live_share,
)
from securepacs.server.domain.studies.schemas import (
    BatchItem,
    BatchResult,
    BlobStatus,
    CommitItem,
    CommitOutcome,
    CommitOutcomes,
    CommitRequest,
    StatsResponse,
    StudyDetail,
    StudyPage,
    StudySummary,
)
from securepacs.server.domain.studies.schemas import Endorsement as EndorsementView
from securepacs.server.errors import (
    ChecksumMismatch,
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    PermissionMissing,
    StorageLimitReached,
    UploadIncomplete,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable, Sequence
    from datetime import datetime

    from sqlalchemy import ColumnElement
    from sqlalchemy.ext.asyncio import AsyncSession

    from securepacs.server.context import ServerContext

__all__ = (
    "MAX_BATCH_ITEMS",
    "PART_SIZE",
    "DuplicateStudy",
    "StudyService",
    "part_key",
    "sweep_orphans",
)

_log = logging.getLogger(__name__)

# 8 MiB: a CT or MR slice is one part, a large multi-frame instance a handful; a part is the
# unit of retry, so a failure costs at most this much again.
PART_SIZE: Final = 8 * 1024 * 1024
MAX_BATCH_ITEMS: Final = 512
# Both databases cap bound parameters per statement (SQLite 32766, asyncpg 32767).
_IN_BATCH: Final = 5000


class DuplicateStudy(Conflict):
    """A different study of mine already has this StudyInstanceUID tag."""

    code = "duplicate_study"
    detail = "This study is already stored. Upload again to add any new files to it."


_NO_DOWNLOAD: Final = (
    "Your access to this study does not include downloading it. Ask the study's owner to "
    "share it with you with Download permission."
)


def part_key(blob_id: str, number: int) -> str:
    """Where part ``number`` of ``blob_id`` lives in the blob store."""
    return f"blobs/{blob_id}/{number:06d}"


def _share_fields(share: Share | None, granter: Account | None) -> dict[str, Any]:
    if share is None or granter is None:
        return {}
    return {
        "permission": share.permission,
        "share_id": share.id,
        "grant": share.grant,
        "granter_email": granter.email,
        "granter_keys": granter.public_keys,
        "note": share.note,
        "expires_at": epoch(share.expires_at),
    }


def _parts(size: int, part_size: int) -> int:
    return max(1, -(-size // part_size))


def _batches(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(ids), _IN_BATCH):
        yield ids[start : start + _IN_BATCH]


def _mb(size: int) -> str:
    return f"{size / 1_000_000:,.1f} MB"


class StudyService:
    """One request's worth of study operations on one database session."""

    def __init__(self, ctx: ServerContext, db: AsyncSession) -> None:
        self.ctx = ctx
        self.db = db

    # Storage -------------------------------------------------------------------------------

    def limit_of(self, account: Account) -> int:
        """The account's storage limit in bytes."""
        if account.storage_limit_bytes is not None:
            return account.storage_limit_bytes
        return self.ctx.settings.storage_limit_bytes

    async def used_by(self, account_id: str) -> int:
        """Bytes reserved by the account's blobs, complete or still uploading."""
        found = await self.db.execute(select(Account.used_bytes).where(Account.id == account_id))
        return int(found.scalar_one())

    async def _reserve(self, account: Account, size: int) -> None:
        """Count ``size`` more bytes against the limit, in the caller's transaction.

        One conditional UPDATE: atomic on both databases and across server processes, and as
        cheap with a million blobs as with one.
        """
        limit = func.coalesce(Account.storage_limit_bytes, self.ctx.settings.storage_limit_bytes)
        done = await self.db.execute(
            update(Account)
            .where(Account.id == account.id, Account.used_bytes + size <= limit)
            .values(used_bytes=Account.used_bytes + size)
            .execution_options(synchronize_session=False)
        )
        if done.rowcount == 1:  # type: ignore[attr-defined]
            return
        # Read before the rollback, which expires the loaded account.
        account_id, limit_bytes = account.id, self.limit_of(account)
        await self.db.rollback()
        used = await self.used_by(account_id)
        raise StorageLimitReached(
            f"This upload needs {_mb(size)} more, but only {_mb(max(0, limit_bytes - used))} "
            f"of your {_mb(limit_bytes)} storage is free. Delete studies you no longer need, "
            "or choose a plan with more storage in My Account."
        )

    async def stats(self, account: Account) -> StatsResponse:
        """Studies, files and storage of the account (My Account, Statistics)."""
        found = await self.db.execute(
            select(func.count(Study.id), func.coalesce(func.sum(Study.instance_count), 0)).where(
                Study.owner_id == account.id
            )
        )
        studies, files = found.one()
        mine = select(Study.id).where(Study.owner_id == account.id)
        shared = await self.db.execute(
            select(func.count(func.distinct(Share.study_id))).where(Share.study_id.in_(mine))
        )
        linked = await self.db.execute(
            select(func.count(func.distinct(Link.study_id))).where(
                Link.study_id.in_(mine),
                Link.revoked_at.is_(None),
                Link.study_id.not_in(select(Share.study_id).where(Share.study_id.in_(mine))),
            )
        )
        received = await self.db.execute(
            select(func.count(Share.id)).where(Share.recipient_id == account.id, live_share())
        )
        return StatsResponse(
            studies=int(studies),
            files=int(files),
            used_bytes=await self.used_by(account.id),
            limit_bytes=self.limit_of(account),
            shared_studies=int(shared.scalar_one()) + int(linked.scalar_one()),
            received_studies=int(received.scalar_one()),
        )

    # Blobs ---------------------------------------------------------------------------------

    async def _status(self, blob: Blob) -> BlobStatus:
        found = await self.db.execute(
            select(BlobPart.number).where(BlobPart.blob_id == blob.id).order_by(BlobPart.number)
        )
        return BlobStatus(
            blob_id=blob.id,
            size=blob.size,
            part_size=blob.part_size,
            parts=_parts(blob.size, blob.part_size),
            received=list(found.scalars()),
            complete=blob.state == BlobState.COMPLETE,
        )

    async def _own_blob(self, account: Account, blob_id: str) -> Blob:
        blob = await self.db.get(Blob, blob_id)
        if blob is None or blob.owner_id != account.id or blob.state == BlobState.DELETING:
            raise NotFound
        return blob

    async def create_blob(self, account: Account, blob_id: str, size: int) -> BlobStatus:
        """Reserve ``size`` bytes for a blob; asking again returns where the upload stands."""
        existing = await self.db.get(Blob, blob_id)
        if existing is not None:
            if existing.owner_id != account.id or existing.state == BlobState.DELETING:
                raise Conflict("This file id is taken. Start the upload again.")
            if existing.size != size:
                raise Conflict(
                    "A file with this id was started with another size. The local file changed "
                    "since the upload began: start the upload again."
                )
            return await self._status(existing)
        await self._reserve(account, size)
        blob = Blob(id=blob_id, owner_id=account.id, size=size, part_size=PART_SIZE)
        self.db.add(blob)
        try:
            await self.db.commit()
        except IntegrityError:
            # The same id reserved by a concurrent retry: answer like the retry would.
            await self.db.rollback()
            await self.db.refresh(account)  # a rollback expires what the session loaded
            return await self.create_blob(account, blob_id, size)
        return await self._status(blob)

    async def put_part(
        self, account: Account, blob_id: str, number: int, data: bytes, sha256: bytes | None
    ) -> BlobStatus:
        """Store one part; sending a part again (a retry) replaces it with identical bytes."""
        blob = await self._own_blob(account, blob_id)
        parts = _parts(blob.size, blob.part_size)
        if not 0 <= number < parts:
            raise InvalidInput(f"This file has parts 0 to {parts - 1}.")
        expected = blob.part_size if number < parts - 1 else blob.size - number * blob.part_size
        if len(data) != expected:
            raise InvalidInput("A part arrived with the wrong size. It is safe to send it again.")
        digest = hashlib.sha256(data).digest()
        if sha256 is not None and sha256 != digest:
            raise ChecksumMismatch
        if blob.state == BlobState.COMPLETE:
            stored = await self.db.get(BlobPart, (blob_id, number))
            if stored is not None and stored.sha256 == digest:
                return await self._status(blob)
            raise Conflict("This file is already complete and cannot change.")
        await self.ctx.blobs.put(part_key(blob_id, number), data)
        values = {"blob_id": blob_id, "number": number, "size": len(data), "sha256": digest}
        dialect = self.ctx.engine.dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        statement = insert(BlobPart).values(**values)
        await self.db.execute(
            statement.on_conflict_do_update(
                index_elements=[BlobPart.blob_id, BlobPart.number],
                set_={"size": statement.excluded.size, "sha256": statement.excluded.sha256},
            )
        )
        blob.updated_at = utcnow()
        await self.db.commit()
        return await self._status(blob)

    async def complete(self, account: Account, blob_id: str) -> BlobStatus:
        """Mark the blob complete once every part arrived."""
        blob = await self._own_blob(account, blob_id)
        status = await self._status(blob)
        if status.complete:
            return status
        if len(status.received) != status.parts:
            missing = status.parts - len(status.received)
            raise UploadIncomplete(
                f"{missing} part(s) of this file have not arrived. Send them, then finish again."
            )
        blob.state = BlobState.COMPLETE
        blob.updated_at = utcnow()
        await self.db.commit()
        return await self._status(blob)

    async def put_whole(
        self, account: Account, blob_id: str, data: bytes, sha256: bytes | None
    ) -> BlobStatus:
        """Reserve, store and complete a blob that fits in one part, in one request."""
        if not data:
            raise InvalidInput("An empty file cannot be stored.")
        if len(data) > PART_SIZE:
            raise InvalidInput("This file is larger than one part; upload it in parts.")
        digest = hashlib.sha256(data).digest()
        if sha256 is not None and sha256 != digest:
            raise ChecksumMismatch
        if await self.db.get(Blob, blob_id) is None:
            # The common case, in one transaction: reserve, store, record complete.
            await self._reserve(account, len(data))
            await self.ctx.blobs.put(part_key(blob_id, 0), data)
            self.db.add(
                Blob(
                    id=blob_id,
                    owner_id=account.id,
                    size=len(data),
                    part_size=PART_SIZE,
                    state=BlobState.COMPLETE,
                )
            )
            self.db.add(BlobPart(blob_id=blob_id, number=0, size=len(data), sha256=digest))
            try:
                await self.db.commit()
            except IntegrityError:
                await self.db.rollback()  # a concurrent retry won; answer as it would
                await self.db.refresh(account)
            else:
                return BlobStatus(
                    blob_id=blob_id,
                    size=len(data),
                    part_size=PART_SIZE,
                    parts=1,
                    received=[0],
                    complete=True,
                )
        # A retry, or a blob reserved before: the general path answers idempotently.
        await self.create_blob(account, blob_id, len(data))
        await self.put_part(account, blob_id, 0, data, sha256)
        return await self.complete(account, blob_id)

    async def put_batch(self, account: Account, items: Sequence[BatchItem]) -> BatchResult:
        """Store many small blobs in one transaction (a folder of CT slices, say).

        Per-request costs dominate for instances of a few hundred kilobytes; a batch pays them
        once. Blobs the server already holds are answered as retries would be.
        """
        total = sum(len(item.data) for item in items)
        if not items or total > PART_SIZE or len(items) > MAX_BATCH_ITEMS:
            raise InvalidInput("A batch holds 1 to 512 files and at most 8 MiB.")
        ids = [item.blob_id.hex() for item in items]
        if len(set(ids)) != len(ids):
            raise InvalidInput("A file is listed twice in the batch.")
        digests = [hashlib.sha256(item.data).digest() for item in items]
        if any(item.sha256 != digest for item, digest in zip(items, digests, strict=True)):
            raise ChecksumMismatch
        found = await self.db.execute(select(Blob.id).where(Blob.id.in_(ids)))
        known = set(found.scalars())
        fresh = [(i, item) for i, item in enumerate(items) if ids[i] not in known]
        if fresh:
            await self._reserve(account, sum(len(item.data) for _, item in fresh))
            await asyncio.gather(
                *(self.ctx.blobs.put(part_key(ids[i], 0), item.data) for i, item in fresh)
            )
            try:
                rows = [(ids[i], item, digests[i]) for i, item in fresh]
                await self._insert_complete(account, rows)
                await self.db.commit()
            except IntegrityError:
                # A concurrent retry stored some of them: take the careful path one by one.
                await self.db.rollback()
                await self.db.refresh(account)
                known = set()
                fresh = []
        for i, item in enumerate(items):
            if ids[i] in known or not fresh:
                await self.put_whole(account, ids[i], item.data, item.sha256)
        return BatchResult(stored=len(fresh), already_stored=len(items) - len(fresh))

    async def _insert_complete(
        self, account: Account, blobs: Sequence[tuple[str, BatchItem, bytes]]
    ) -> None:
        # Bulk inserts: for a batch of hundreds, building ORM objects cost more than the SQL.
        now = utcnow()
        await self.db.execute(
            insert(Blob),
            [
                {
                    "id": blob_id,
                    "owner_id": account.id,
                    "study_id": None,
                    "size": len(item.data),
                    "part_size": PART_SIZE,
                    "state": BlobState.COMPLETE,
                    "created_at": now,
                    "updated_at": now,
                }
                for blob_id, item, _ in blobs
            ],
        )
        await self.db.execute(
            insert(BlobPart),
            [
                {"blob_id": blob_id, "number": 0, "size": len(item.data), "sha256": digest}
                for blob_id, item, digest in blobs
            ],
        )

    async def readable_blob(
        self, account: Account, blob_id: str, *, download: bool = False
    ) -> Blob:
        """A complete blob the account may read: its own, or one of a study it may read.

        ``download``: the read is part of a download, which a share needs Download for.
        """
        return (await self.readable_blobs(account, [blob_id], download=download))[0]

    async def readable_blobs(
        self, account: Account, blob_ids: list[str], *, download: bool = False
    ) -> list[Blob]:
        """:meth:`readable_blob` for many ids at once, in the order asked; one query each kind."""
        found = await self.db.execute(select(Blob).where(Blob.id.in_(set(blob_ids))))
        blobs = {blob.id: blob for blob in found.scalars()}
        others = {b.study_id for b in blobs.values() if b.owner_id != account.id and b.study_id}
        permissions = await account_permissions(self.db, account, others)
        needed = PERMISSION_DOWNLOAD if download else PERMISSION_VIEW
        readable: list[Blob] = []
        for blob_id in blob_ids:
            blob = blobs.get(blob_id)
            if blob is None or blob.state != BlobState.COMPLETE:
                raise NotFound("A file asked for is not on the server, or not yours to read.")
            if blob.owner_id != account.id:
                permission = permissions.get(blob.study_id or "", 0)
                if permission == 0:
                    raise NotFound("A file asked for is not on the server, or not yours to read.")
                if permission < needed:
                    raise PermissionMissing(_NO_DOWNLOAD)
            readable.append(blob)
        return readable

    async def link_blobs(
        self, access: Access, blob_ids: list[str], *, download: bool = False
    ) -> list[Blob]:
        """Blobs of the linked study, in the order asked; nothing of any other study."""
        if download:
            access.require(PERMISSION_DOWNLOAD)
        found = await self.db.execute(
            select(Blob).where(Blob.id.in_(set(blob_ids)), Blob.study_id == access.study.id)
        )
        blobs = {blob.id: blob for blob in found.scalars()}
        readable: list[Blob] = []
        for blob_id in blob_ids:
            blob = blobs.get(blob_id)
            if blob is None or blob.state != BlobState.COMPLETE:
                raise NotFound("A file asked for is not part of this study.")
            readable.append(blob)
        return readable

    async def read(self, blob: Blob, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes ``start`` to ``end`` (exclusive) of a blob, part by part."""
        number = start // blob.part_size
        while start < end:
            part_start = number * blob.part_size
            stop = min(end, part_start + blob.part_size)
            yield await self.ctx.blobs.get_range(
                part_key(blob.id, number), start - part_start, stop - part_start
            )
            start = stop
            number += 1

    async def abandon_blob(self, account: Account, blob_id: str) -> None:
        """Delete an upload that no study holds (a cancelled upload frees its space)."""
        blob = await self._own_blob(account, blob_id)
        if blob.study_id is not None:
            raise Conflict("This file belongs to a study; delete the study instead.")
        await release(self.db, Blob.id == blob.id)
        await self.db.commit()
        await purge_deleting(self.ctx, self.db)

    # Studies -------------------------------------------------------------------------------

    def _summary(
        self,
        study: Study,
        owner_email: str,
        share: Share | None = None,
        granter: Account | None = None,
        access: Access | None = None,
    ) -> StudySummary:
        fields = _share_fields(share, granter)
        if access is not None:
            fields["permission"] = access.permission
        return StudySummary(
            study_id=study.id,
            owner_email=owner_email,
            is_owner=share is None and (access is None or access.is_owner),
            uid_tag=study.uid_tag,
            wrapped_key=study.wrapped_key,
            metadata=study.metadata_box,
            manifest_version=study.manifest_version,
            instance_count=study.instance_count,
            size=study.size,
            created_at=study.created_at,
            updated_at=study.updated_at,
            **fields,
        )

    async def _blob_ids(self, study_id: str) -> list[str]:
        found = await self.db.execute(
            select(Blob.id).where(Blob.study_id == study_id).order_by(Blob.id)
        )
        return list(found.scalars())

    async def detail_of(self, access: Access) -> StudyDetail:
        """The study as ``access`` may see it, with what its readers need to trust signers."""
        study = access.study
        owner = await self.db.get(Account, study.owner_id)
        assert owner is not None  # noqa: S101 -- the foreign key guarantees it
        share = access.share
        granter = await self.db.get(Account, share.granter_id) if share is not None else None
        found = await self.db.execute(
            select(Endorsement.grant, Endorsement.recipient_keys)
            .where(Endorsement.study_id == study.id)
            .order_by(Endorsement.created_at, Endorsement.id)
        )
        return StudyDetail(
            summary=self._summary(study, owner.email, share, granter, access),
            manifest=study.manifest,
            blob_ids=await self._blob_ids(study.id),
            owner_keys=owner.public_keys,
            endorsements=[
                EndorsementView(grant=grant, recipient_keys=keys) for grant, keys in found.all()
            ],
        )

    async def detail(self, account: Account, study_id: str) -> StudyDetail:
        """One study with its manifest and blob ids, for its owner or a live share's recipient."""
        return await self.detail_of(await account_access(self.db, account, study_id))

    async def page(
        self, account: Account, after: str | None, limit: int, source: str = "mine"
    ) -> StudyPage:
        """The account's studies, or with ``source`` "shared" those shared with it.

        In id order, ``limit`` at a time.
        """
        if source == "shared":
            return await self._shared_page(account, after, limit)
        # Plain columns, not ORM entities: a worklist page is thousands of rows, and the
        # identity map would cost more than the query.
        columns = (
            Study.id,
            Study.uid_tag,
            Study.wrapped_key,
            Study.metadata_box,
            Study.manifest_version,
            Study.instance_count,
            Study.size,
            Study.created_at,
            Study.updated_at,
        )
        query = select(*columns).where(Study.owner_id == account.id)
        if after:
            query = query.where(Study.id > after)
        found = await self.db.execute(query.order_by(Study.id).limit(limit + 1))
        rows = found.all()
        more = len(rows) > limit
        rows = rows[:limit]
        email = account.email
        return StudyPage(
            studies=[
                StudySummary(
                    study_id=row[0],
                    owner_email=email,
                    is_owner=True,
                    uid_tag=row[1],
                    wrapped_key=row[2],
                    metadata=row[3],
                    manifest_version=row[4],
                    instance_count=row[5],
                    size=row[6],
                    created_at=row[7],
                    updated_at=row[8],
                )
                for row in rows
            ],
            next=rows[-1][0] if more else None,
        )

    async def _shared_page(self, account: Account, after: str | None, limit: int) -> StudyPage:
        owner = aliased(Account)
        granter = aliased(Account)
        query = (
            select(Study, Share, owner.email, granter)
            .join(Share, Share.study_id == Study.id)
            .join(owner, owner.id == Study.owner_id)
            .join(granter, granter.id == Share.granter_id)
            .where(Share.recipient_id == account.id, live_share())
        )
        if after:
            query = query.where(Study.id > after)
        found = await self.db.execute(query.order_by(Study.id).limit(limit + 1))
        rows = found.all()
        more = len(rows) > limit
        rows = rows[:limit]
        return StudyPage(
            studies=[
                self._summary(study, owner_email, share, granter_account)
                for study, share, owner_email, granter_account in rows
            ],
            next=rows[-1][0].id if more else None,
        )

    async def lookup(self, account: Account, tags: Sequence[bytes]) -> list[StudySummary]:
        """My studies whose UID tag is one of ``tags`` (duplicate detection)."""
        if not tags:
            return []
        found = await self.db.execute(
            select(Study).where(Study.owner_id == account.id, Study.uid_tag.in_(list(tags)))
        )
        return [self._summary(study, account.email) for study in found.scalars()]

    async def commit(self, account: Account, study_id: str, data: CommitRequest) -> StudyDetail:
        """Create the study, or add a manifest version to it, atomically.

        Raises:
            UploadIncomplete: a listed blob is missing or not complete.
            DuplicateStudy: another study of mine has this UID tag (append to it instead).
            Conflict: the study moved on meanwhile, or a blob belongs to another study.
        """
        await self._commit(account, study_id, data)
        return await self.detail(account, study_id)

    async def commit_many(self, account: Account, items: Sequence[CommitItem]) -> CommitOutcomes:
        """Commit each study of a batch in a transaction of its own; one failing stops none.

        An upload of many small studies would otherwise pay a request for each.
        """
        results: list[CommitOutcome] = []
        for item in items:
            try:
                await self._commit(account, item.study_id, item)
            except DomainError as error:
                await self.db.rollback()
                await self.db.refresh(account)  # the rollback expired it
                results.append(
                    CommitOutcome(
                        study_id=item.study_id, code=error.code, detail=error.person_detail
                    )
                )
            else:
                results.append(CommitOutcome(study_id=item.study_id))
        return CommitOutcomes(results=results)

    async def _commit(self, account: Account, study_id: str, data: CommitRequest) -> None:
        blob_ids = sorted(set(data.blob_ids))
        if len(blob_ids) != len(data.blob_ids):
            raise InvalidInput("A file is listed twice.")
        study = await self.db.get(Study, study_id, with_for_update=True)
        owner = study is None or study.owner_id == account.id
        if study is not None and not owner:
            # Someone given Edit adds instances or changes the details (protocol.md §8.1).
            (await account_access(self.db, account, study_id)).require(PERMISSION_EDIT)
            if data.wrapped_key != study.wrapped_key:
                raise InvalidInput("Only the study's owner can change its key. Reload the study.")
        if study is not None and (
            data.manifest_version == study.manifest_version and data.manifest == study.manifest
        ):
            return  # a retried commit
        blobs: list[Blob] = []
        for batch in _batches(blob_ids):
            found = await self.db.execute(select(Blob).where(Blob.id.in_(batch)))
            blobs += found.scalars()
        # Each file is the committer's own upload or already part of the study (an editor's
        # files stay in it when the owner adds more, and the other way round).
        if len(blobs) != len(blob_ids) or any(
            (blob.owner_id != account.id and blob.study_id != study_id)
            or blob.state != BlobState.COMPLETE
            for blob in blobs
        ):
            raise UploadIncomplete
        if any(blob.study_id not in (None, study_id) for blob in blobs):
            raise Conflict("A file of this upload already belongs to another study.")
        now = utcnow()
        if study is None:
            if data.manifest_version != 1:
                raise Conflict("This study no longer exists. Upload it again.")
            duplicate = await self.db.execute(
                select(Study.id).where(Study.owner_id == account.id, Study.uid_tag == data.uid_tag)
            )
            if duplicate.first() is not None:
                raise DuplicateStudy
            study = Study(id=study_id, owner_id=account.id, created_at=now)
            self.db.add(study)
        else:
            if data.uid_tag != study.uid_tag:
                raise InvalidInput("The study's UID tag cannot change.")
            if data.manifest_version != study.manifest_version + 1:
                raise Conflict(
                    "The study changed while you were uploading. Run the upload again to add "
                    "your files to its newest version."
                )
            if not set(await self._blob_ids(study_id)) <= set(blob_ids):
                raise Conflict("A new version of a study must keep all of its files.")
        study.uid_tag = data.uid_tag
        study.wrapped_key = data.wrapped_key
        study.metadata_box = data.metadata
        study.manifest = data.manifest
        study.manifest_version = data.manifest_version
        study.instance_count = len(blob_ids)
        study.size = sum(blob.size for blob in blobs)
        study.updated_at = now
        try:
            await self.db.flush()
            for batch in _batches(blob_ids):
                await self.db.execute(
                    update(Blob).where(Blob.id.in_(batch)).values(study_id=study_id, updated_at=now)
                )
            await self.db.commit()
        except IntegrityError:
            # A concurrent commit of the same study or the same UID tag won the race.
            await self.db.rollback()
            raise DuplicateStudy from None

    async def delete_study(self, account: Account, study_id: str) -> None:
        """Delete the study and its blobs; their space is free as soon as this returns."""
        access = await account_access(self.db, account, study_id)
        if not access.is_owner:
            raise PermissionMissing(
                "Only the study's owner can delete it. To stop seeing it, ask them to remove "
                "your share."
            )
        study = access.study
        await release(self.db, Blob.study_id == study.id)
        await self.db.delete(study)
        await self.db.commit()
        await purge_deleting(self.ctx, self.db)


async def release(db: AsyncSession, which: ColumnElement[bool]) -> None:
    """Mark the blobs ``which`` selects as deleting and give their space back to their owners.

    Runs in the caller's transaction, so the space is free exactly when the deletion commits.
    """
    live = and_(which, Blob.state != BlobState.DELETING)
    owners = await db.execute(
        select(Blob.owner_id, func.sum(Blob.size)).where(live).group_by(Blob.owner_id)
    )
    for owner_id, size in owners.all():
        await db.execute(
            update(Account)
            .where(Account.id == owner_id)
            .values(used_bytes=Account.used_bytes - int(size))
            .execution_options(synchronize_session=False)
        )
    await db.execute(
        update(Blob)
        .where(live)
        .values(state=BlobState.DELETING, study_id=None, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


async def purge(ctx: ServerContext, db: AsyncSession, blobs: Sequence[Blob]) -> int:
    """Remove the parts of blobs marked deleting from the store, then their rows."""
    for blob in blobs:
        parts = _parts(blob.size, blob.part_size)
        await ctx.blobs.delete_many([part_key(blob.id, number) for number in range(parts)])
    ids = [blob.id for blob in blobs]
    for batch in _batches(ids):
        await db.execute(delete(Blob).where(Blob.id.in_(batch)))
    await db.commit()
    return len(ids)


async def purge_deleting(ctx: ServerContext, db: AsyncSession, batch: int = 1000) -> int:
    """Purge every blob marked deleting (deleted studies, expired uploads, interrupted purges)."""
    purged = 0
    while True:
        found = await db.execute(select(Blob).where(Blob.state == BlobState.DELETING).limit(batch))
        blobs = list(found.scalars())
        if not blobs:
            return purged
        purged += await purge(ctx, db, blobs)


async def sweep_orphans(ctx: ServerContext, now: datetime | None = None) -> int:
    """Delete uploads that no study took within SECUREPACS_UPLOAD_TTL_HOURS; returns how many."""
    cutoff = (now or utcnow()) - timedelta(hours=ctx.settings.upload_ttl_hours)
    async with ctx.sessions() as db:
        await release(db, and_(Blob.study_id.is_(None), Blob.updated_at < cutoff))
        await db.commit()
        return await purge_deleting(ctx, db)


async def sweep_forever(ctx: ServerContext) -> None:
    """The lifespan task: sweep now and then, until cancelled; a failed sweep is retried."""
    interval = min(3600.0, ctx.settings.upload_ttl_hours * 3600 / 4)
    while True:
        try:
            swept = await sweep_orphans(ctx)
            if swept:
                _log.info("expired uploads removed", extra={"count": swept})
        except Exception as error:  # noqa: BLE001 -- the next round retries
            _log.warning("upload sweep failed", extra={"error_type": type(error).__name__})
        await asyncio.sleep(interval)

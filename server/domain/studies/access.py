"""Who may do what with a study: its owner, a live share, or an anonymous link (ZK-5).

Every study and blob route asks here. A share counts only while it carries a grant and has not
expired; a link only once its access key has checked and while it is neither expired nor
revoked. Deleting a share, a link or the study takes effect on the next request, because
nothing here is cached.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from sqlalchemy import or_, select

from securepacs.crypto import PERMISSION_ADMIN
from securepacs.crypto.link import link_verifier
from securepacs.server.db.base import utcnow
from securepacs.server.db.models import Link, Share, Study
from securepacs.server.errors import (
    LinkExpired,
    LinkNotFound,
    LinkRevoked,
    NotFound,
    PermissionMissing,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy import ColumnElement
    from sqlalchemy.ext.asyncio import AsyncSession

    from securepacs.server.db.models import Account
    from securepacs.server.ratelimit import RateLimiter

__all__ = (
    "Access",
    "account_access",
    "account_permissions",
    "epoch",
    "from_epoch",
    "link_access",
    "live_share",
)

# Failed link attempts per link id and per address (protocol.md §9.2: SHOULD rate-limit).
_LINK_KEY_BYTES: Final = 32


def epoch(moment: datetime | None) -> int:
    """Seconds since 1970 as grants sign them; 0 for no expiry."""
    return 0 if moment is None else int(moment.timestamp())


def from_epoch(seconds: int) -> datetime | None:
    """The expiry column's value for a signed ``expires_at``."""
    return None if seconds == 0 else datetime.fromtimestamp(seconds, UTC)


def live_share() -> ColumnElement[bool]:
    """A share that grants access now: sealed, and not expired."""
    return (Share.grant.is_not(None)) & (
        or_(Share.expires_at.is_(None), Share.expires_at > utcnow())
    )


@dataclass(frozen=True, slots=True)
class Access:
    """One requester's rights on one study."""

    study: Study
    permission: int
    share: Share | None = None
    link: Link | None = None

    @property
    def is_owner(self) -> bool:
        """Only the owner's access comes from neither a share nor a link."""
        return self.share is None and self.link is None

    def require(self, permission: int) -> None:
        """Raise PermissionMissing when this access allows less than ``permission``."""
        if self.permission < permission:
            raise PermissionMissing


async def account_access(db: AsyncSession, account: Account, study_id: str) -> Access:
    """The account's access to the study; NotFound when it has none (or no such study).

    A stranger is not told that the study exists.
    """
    study = await db.get(Study, study_id)
    if study is None:
        raise NotFound
    if study.owner_id == account.id:
        return Access(study, PERMISSION_ADMIN)
    found = await db.execute(
        select(Share).where(
            Share.study_id == study_id, Share.recipient_id == account.id, live_share()
        )
    )
    share = found.scalar_one_or_none()
    if share is None:
        raise NotFound
    return Access(study, share.permission, share=share)


async def account_permissions(
    db: AsyncSession, account: Account, study_ids: Iterable[str]
) -> dict[str, int]:
    """The account's permission on each of ``study_ids`` it may read (absent: none)."""
    ids = set(study_ids)
    if not ids:
        return {}
    owned = await db.execute(
        select(Study.id).where(Study.id.in_(ids), Study.owner_id == account.id)
    )
    permissions = dict.fromkeys(owned.scalars(), PERMISSION_ADMIN)
    shared = await db.execute(
        select(Share.study_id, Share.permission).where(
            Share.study_id.in_(ids - set(permissions)),
            Share.recipient_id == account.id,
            live_share(),
        )
    )
    permissions.update({study_id: permission for study_id, permission in shared.all()})
    return permissions


async def link_access(
    db: AsyncSession,
    limiter: RateLimiter,
    link_id: str,
    access_key: bytes | None,
    address: str,
) -> Access:
    """Check a link's access key (proof of possession of its secret) and its terms.

    The link id alone opens nothing: a wrong or missing key is refused exactly like an unknown
    link, and counts against the link's and the address's limits of failed attempts. Expiry and
    revocation are told only to someone who proved possession, and only then.
    """
    limiter.check("link-id", link_id)
    limiter.check("link-ip", address)
    link = await db.get(Link, link_id)
    if (
        link is None
        or access_key is None
        or len(access_key) != _LINK_KEY_BYTES
        or not hmac.compare_digest(link_verifier(access_key), link.verifier)
    ):
        limiter.hit("link-id", link_id)
        limiter.hit("link-ip", address)
        raise LinkNotFound
    if link.revoked_at is not None or link.envelope is None:
        raise LinkRevoked
    if link.expires_at is not None and link.expires_at <= utcnow():
        raise LinkExpired
    study = await db.get(Study, link.study_id)
    if study is None:  # pragma: no cover -- the link row goes with its study (ON DELETE CASCADE)
        raise LinkRevoked
    return Access(study, link.permission, link=link)

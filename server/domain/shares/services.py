"""The rules of sharing: who may share, what a grant or link envelope must say, who is told.

The server cannot open a grant or a link envelope; it checks what it can without a secret key
(protocol.md §8.4 steps 1 to 3, §9.3 steps 1 to 3): the envelope is well formed and signed by
the account that submits it, and it names this study, this recipient and exactly the terms the
request asks the server to enforce. A share to an email without a confirmed account stays
pending, without a grant, until the sharer's client seals one (protocol.md §15.3): an
unconfirmed registration of someone else's email must not receive their shares.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING, Final

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from securepacs.crypto import (
    PERMISSION_ADMIN,
    PERMISSION_DOWNLOAD,
    PERMISSION_EDIT,
    CryptoError,
    grant_info,
    link_info,
    open_public_keys,
)
from securepacs.server.db.base import utcnow
from securepacs.server.db.models import Account, Endorsement, Link, Share
from securepacs.server.domain.accounts.services import normalize_email
from securepacs.server.domain.shares.schemas import (
    Completable,
    CompletableList,
    KeyLookup,
    KeysFound,
    LinkOpened,
    LinkRequest,
    LinkView,
    ShareList,
    ShareRequest,
    ShareUpdate,
    ShareView,
)
from securepacs.server.domain.studies.access import (
    Access,
    account_access,
    epoch,
    from_epoch,
)
from securepacs.server.errors import Conflict, InvalidInput, NotFound
from securepacs.server.mail import compose

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.ext.asyncio import AsyncSession

    from securepacs.server.context import ServerContext
    from securepacs.server.domain.studies.services import StudyService

__all__ = ("ShareService",)

_log = logging.getLogger(__name__)

_BAD_GRANT: Final = (
    "The share could not be checked: its sealed key does not match the request. Reload the "
    "page and share again."
)
_BAD_LINK: Final = (
    "The link could not be checked: its envelope does not match the request. Reload the page "
    "and create the link again."
)


def _share_view(share: Share, created_by: str) -> ShareView:
    return ShareView(
        share_id=share.id,
        study_id=share.study_id,
        recipient_email=share.recipient_email,
        pending=share.grant is None,
        permission=share.permission,
        expires_at=epoch(share.expires_at),
        created_at=epoch(share.created_at),
        created_by=created_by,
        note=share.note,
    )


def _link_view(link: Link, created_by: str) -> LinkView:
    return LinkView(
        link_id=link.id,
        study_id=link.study_id,
        permission=link.permission,
        expires_at=epoch(link.expires_at),
        created_at=epoch(link.created_at),
        created_by=created_by,
    )


class ShareService:
    """One request's worth of share and link operations on one database session."""

    def __init__(self, ctx: ServerContext, db: AsyncSession) -> None:
        self.ctx = ctx
        self.db = db

    # People and their keys -----------------------------------------------------------------

    async def _confirmed(self, email: str) -> Account | None:
        found = await self.db.execute(
            select(Account).where(
                Account.email == normalize_email(email), Account.email_confirmed_at.is_not(None)
            )
        )
        return found.scalar_one_or_none()

    async def lookup_keys(self, account: Account, emails: Sequence[str]) -> KeyLookup:
        """The public keys of each email's confirmed account (None: no such account yet).

        Sharing needs them; the client checks their self-signature and shows their
        fingerprint (ZK-4). Counted per account, so that nobody lists who has an account.
        """
        self.ctx.limiter.hit("keys-account", account.id)
        answers: list[KeysFound] = []
        for email in emails:
            found = await self._confirmed(email)
            keys = found.public_keys if found is not None else None
            answers.append(KeysFound(email=normalize_email(email), public_keys=keys))
        return KeyLookup(accounts=answers)

    # Shares --------------------------------------------------------------------------------

    async def _admin(self, account: Account, study_id: str) -> Access:
        access = await account_access(self.db, account, study_id)
        access.require(PERMISSION_ADMIN)
        return access

    async def _emails(self, account_ids: set[str]) -> dict[str, str]:
        if not account_ids:
            return {}
        found = await self.db.execute(
            select(Account.id, Account.email).where(Account.id.in_(account_ids))
        )
        return {account_id: email for account_id, email in found.all()}

    async def shares(self, account: Account, study_id: str) -> ShareList:
        """Everyone the study is shared with, and its live links (Manage Shares)."""
        await self._admin(account, study_id)
        shares = list(
            (
                await self.db.execute(
                    select(Share).where(Share.study_id == study_id).order_by(Share.created_at)
                )
            ).scalars()
        )
        links = list(
            (
                await self.db.execute(
                    select(Link)
                    .where(Link.study_id == study_id, Link.revoked_at.is_(None))
                    .order_by(Link.created_at)
                )
            ).scalars()
        )
        names = await self._emails({s.granter_id for s in shares} | {k.creator_id for k in links})
        return ShareList(
            shares=[_share_view(share, names[share.granter_id]) for share in shares],
            links=[_link_view(link, names[link.creator_id]) for link in links],
        )

    def _check_grant(
        self,
        grant: bytes,
        *,
        study_id: str,
        granter: Account,
        recipient: Account,
        permission: int,
        expires_at: int,
    ) -> None:
        try:
            env = grant_info(grant)
            recipient_keys = open_public_keys(recipient.public_keys)
            granter_keys = open_public_keys(granter.public_keys)
        except CryptoError:
            raise InvalidInput(_BAD_GRANT) from None
        if (
            env.study_id.hex() != study_id
            or env.recipient != recipient_keys.x25519
            or env.granter != granter_keys.ed25519
            or env.permission != permission
            or env.expires_at != expires_at
        ):
            raise InvalidInput(_BAD_GRANT)

    async def create(self, account: Account, study_id: str, data: ShareRequest) -> ShareView:
        """Share the study with one email: sealed now, or pending until they have an account."""
        access = await self._admin(account, study_id)
        # Whether an email has an account shows in the answer: counted like a key lookup.
        self.ctx.limiter.hit("keys-account", account.id)
        email = normalize_email(data.recipient_email)
        if email == account.email:
            raise InvalidInput(
                "To share with someone who has no account, create an anonymous link: choose "
                "Create anonymous link, or enter your own email as the recipient."
            )
        owner = await self.db.get(Account, access.study.owner_id)
        if owner is not None and owner.email == email:
            raise Conflict("This person owns the study already.")
        recipient = await self._confirmed(email)
        if recipient is None and data.grant is not None:
            raise InvalidInput(_BAD_GRANT)
        if recipient is not None:
            if data.grant is None:
                raise Conflict(
                    "This person has an account now. Reload the page and share again, so that "
                    "the study's key can be sealed to them."
                )
            self._check_grant(
                data.grant,
                study_id=study_id,
                granter=account,
                recipient=recipient,
                permission=data.permission,
                expires_at=data.expires_at,
            )
        now = utcnow()
        share = Share(
            id=data.share_id,
            study_id=study_id,
            granter_id=account.id,
            recipient_email=email,
            recipient_id=recipient.id if recipient is not None else None,
            permission=data.permission,
            expires_at=from_epoch(data.expires_at),
            grant=data.grant,
            note=data.note,
            created_at=now,
            updated_at=now,
        )
        self.db.add(share)
        try:
            if recipient is not None:
                await self._endorse(share, recipient)
            await self.db.commit()
        except IntegrityError:
            await self.db.rollback()
            raise Conflict(
                "The study is already shared with this person. Select their row in Manage "
                "Shares to change the permission or expiry."
            ) from None
        if recipient is not None:
            await self._tell(recipient, account)
        return _share_view(share, account.email)

    async def _endorse(self, share: Share, recipient: Account) -> None:
        """Keep an Edit or Admin grant for good (protocol.md §15.4), in the caller's transaction."""
        if share.grant is None or share.permission < PERMISSION_EDIT:
            return
        # One per person and study is proof enough: a newer grant to the same keys replaces it.
        await self.db.execute(
            delete(Endorsement).where(
                Endorsement.study_id == share.study_id,
                Endorsement.recipient_keys == recipient.public_keys,
            )
        )
        self.db.add(
            Endorsement(
                id=secrets.token_hex(16),
                study_id=share.study_id,
                grant=share.grant,
                recipient_keys=recipient.public_keys,
                created_at=utcnow(),
            )
        )

    async def _share_as_admin(self, account: Account, share_id: str) -> Share:
        share = await self.db.get(Share, share_id)
        if share is None:
            raise NotFound
        await self._admin(account, share.study_id)
        return share

    async def update(self, account: Account, share_id: str, data: ShareUpdate) -> ShareView:
        """New permission or expiry: a new grant, signed by whoever changes it, replaces the old."""
        share = await self._share_as_admin(account, share_id)
        recipient = await self.db.get(Account, share.recipient_id) if share.recipient_id else None
        if recipient is None:
            if data.grant is not None:
                raise InvalidInput(_BAD_GRANT)
        else:
            if data.grant is None:
                raise InvalidInput(_BAD_GRANT)
            self._check_grant(
                data.grant,
                study_id=share.study_id,
                granter=account,
                recipient=recipient,
                permission=data.permission,
                expires_at=data.expires_at,
            )
        share.permission = data.permission
        share.expires_at = from_epoch(data.expires_at)
        share.grant = data.grant
        share.granter_id = account.id
        share.updated_at = utcnow()
        if recipient is not None:
            await self._endorse(share, recipient)
        await self.db.commit()
        return _share_view(share, account.email)

    async def completable(self, account: Account) -> CompletableList:
        """Pending shares this account made whose recipient has a confirmed account now."""
        recipient = aliased(Account)
        found = await self.db.execute(
            select(Share, recipient.public_keys)
            .join(recipient, recipient.email == Share.recipient_email)
            .where(
                Share.granter_id == account.id,
                Share.grant.is_(None),
                recipient.email_confirmed_at.is_not(None),
            )
            .order_by(Share.created_at)
        )
        return CompletableList(
            shares=[
                Completable(share=_share_view(share, account.email), public_keys=keys)
                for share, keys in found.all()
            ]
        )

    async def complete(self, account: Account, share_id: str, grant: bytes) -> ShareView:
        """Seal a pending share to its recipient, who has registered since it was made."""
        share = await self._share_as_admin(account, share_id)
        if share.grant is not None:
            raise Conflict("This share is complete already.")
        recipient = await self._confirmed(share.recipient_email)
        if recipient is None:
            raise Conflict("The recipient has not confirmed an account yet. Try again later.")
        self._check_grant(
            grant,
            study_id=share.study_id,
            granter=account,
            recipient=recipient,
            permission=share.permission,
            expires_at=epoch(share.expires_at),
        )
        share.recipient_id = recipient.id
        share.grant = grant
        share.granter_id = account.id
        share.updated_at = utcnow()
        await self._endorse(share, recipient)
        await self.db.commit()
        await self._tell(recipient, account)
        return _share_view(share, account.email)

    async def delete(self, account: Account, share_id: str) -> None:
        """Revoke a share (a study admin) or leave it (its recipient); effective at once."""
        share = await self.db.get(Share, share_id)
        if share is None:
            raise NotFound
        if share.recipient_id != account.id:
            await self._admin(account, share.study_id)
        await self.db.delete(share)
        await self.db.commit()

    async def _tell(self, recipient: Account, sharer: Account) -> None:
        """Mail the recipient if they asked for it; never a study attribute (ZK-1)."""
        if not recipient.notify_shares:
            return
        body = (
            f"{sharer.email} shared a study with you on SecurePACS.\n\n"
            "Sign in and choose Shared with me in the Studies tab to open it. Before you rely "
            "on it, compare the sender's key fingerprint with them in person or by phone.\n\n"
            "You receive this email because Email me on studies shared with me is on in My "
            "Account. Turn it off there.\n"
        )
        try:
            await self.ctx.mailer.send(
                compose(
                    self.ctx.settings.mail_from,
                    recipient.email,
                    "A study was shared with you",
                    body,
                )
            )
        except Exception as error:  # noqa: BLE001 -- the share stands; the mail is a courtesy
            _log.warning("share mail failed", extra={"error_type": type(error).__name__})

    async def set_notifications(self, account: Account, *, shared_with_me: bool) -> None:
        """Turn "Email me on studies shared with me" on or off."""
        account.notify_shares = shared_with_me
        await self.db.commit()

    # Links ---------------------------------------------------------------------------------

    async def create_link(self, account: Account, study_id: str, data: LinkRequest) -> LinkView:
        """Store a link's envelope and the verifier of its access key."""
        await self._admin(account, study_id)
        if data.permission > PERMISSION_DOWNLOAD:
            # Nobody signs in through a link, so it could never use Edit or Admin.
            raise InvalidInput("An anonymous link allows View or Download.")
        try:
            env = link_info(data.envelope)
            creator = open_public_keys(account.public_keys)
        except CryptoError:
            raise InvalidInput(_BAD_LINK) from None
        if (
            env.link_id.hex() != data.link_id
            or env.study_id.hex() != study_id
            or env.creator != creator.ed25519
            or env.permission != data.permission
            or env.expires_at != data.expires_at
        ):
            raise InvalidInput(_BAD_LINK)
        link = Link(
            id=data.link_id,
            study_id=study_id,
            creator_id=account.id,
            permission=data.permission,
            expires_at=from_epoch(data.expires_at),
            envelope=data.envelope,
            verifier=data.verifier,
            created_at=utcnow(),
        )
        self.db.add(link)
        try:
            await self.db.commit()
        except IntegrityError:
            await self.db.rollback()
            raise Conflict("This link id is taken. Create the link again.") from None
        return _link_view(link, account.email)

    async def revoke_link(self, account: Account, link_id: str) -> None:
        """Revoke a link at once; its envelope is dropped, its id kept to say it was revoked."""
        link = await self.db.get(Link, link_id)
        if link is None or link.revoked_at is not None:
            raise NotFound
        await self._admin(account, link.study_id)
        link.revoked_at = utcnow()
        link.envelope = None
        await self.db.commit()

    async def open_link(self, access: Access, studies: StudyService) -> LinkOpened:
        """The envelope and the study, for someone who proved possession of the link's secret."""
        link = access.link
        assert link is not None and link.envelope is not None  # noqa: S101 -- link_access
        creator = await self.db.get(Account, link.creator_id)
        assert creator is not None  # noqa: S101 -- the foreign key guarantees it
        return LinkOpened(
            link_id=link.id,
            envelope=link.envelope,
            permission=link.permission,
            expires_at=epoch(link.expires_at),
            created_by=creator.email,
            creator_keys=creator.public_keys,
            study=await studies.detail_of(access),
        )

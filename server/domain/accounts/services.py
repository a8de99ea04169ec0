"""Account rules, independent of HTTP: what registration, confirmation and sign-in do.

The server checks what it can check without a key: the shape of every envelope, the
self-signature of the public keys, that the password slot carries the same Argon2id parameters
that pre-login will hand out, and that those are not below the protocol floor. It stores the
envelopes as they came and an Argon2 hash of the authentication key.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING, Final

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from securepacs.crypto import CryptoError, open_public_keys, slot_info
from securepacs.crypto.account import SLOT_PASSWORD
from securepacs.crypto.kdf import KdfParams, check_kdf_params
from securepacs.server.db.base import utcnow
from securepacs.server.db.models import Account, EmailToken, KeySlot, Session
from securepacs.server.domain.accounts.schemas import (
    KdfParamsWire,
    LoginResponse,
    MeResponse,
    SessionOut,
    SlotOut,
)
from securepacs.server.domain.accounts.two_factor import check_second_factor, is_enabled
from securepacs.server.errors import (
    EmailNotConfirmed,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    WrongCredentials,
)
from securepacs.server.mail import compose
from securepacs.server.security import fake_kdf_params, hash_token, new_token

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.ext.asyncio import AsyncSession

    from securepacs.server.context import ServerContext

__all__ = ("AccountService", "SignedIn", "account_params", "normalize_email")

_EMAIL: Final = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
CONFIRM: Final = "confirm"


def normalize_email(email: str) -> str:
    """Lower-cased and trimmed; raises InvalidInput unless it looks like an address."""
    email = email.strip().lower()
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        raise InvalidInput("Enter a valid email address, like name@example.org.")
    return email


def _wire(params: KdfParams) -> KdfParamsWire:
    return KdfParamsWire(
        alg=params.alg,
        opslimit=params.opslimit,
        memlimit_kib=params.memlimit_kib,
        salt=params.salt,
    )


def account_params(account: Account) -> KdfParams:
    """The Argon2id parameters pre-login hands out for ``account``."""
    return KdfParams(
        alg=account.kdf_alg,
        opslimit=account.kdf_opslimit,
        memlimit_kib=account.kdf_memlimit_kib,
        salt=account.kdf_salt,
    )


class SignedIn:
    """A valid session and its account, as resolved from the session cookie."""

    def __init__(self, session: Session, account: Account) -> None:
        self.session = session
        self.account = account


class AccountService:
    """One request's worth of account operations on one database session."""

    def __init__(self, ctx: ServerContext, db: AsyncSession) -> None:
        self.ctx = ctx
        self.db = db

    async def _by_email(self, email: str) -> Account | None:
        found = await self.db.execute(select(Account).where(Account.email == email))
        return found.scalar_one_or_none()

    async def register(
        self, email: str, kdf: KdfParamsWire, auth_key: bytes, public_keys: bytes, slot: bytes
    ) -> None:
        """Create an unconfirmed account and mail its confirmation link.

        An email that is already registered gets the same answer, and its owner a mail saying
        so: the response never reveals whether an address has an account.
        """
        email = normalize_email(email)
        params = KdfParams(
            alg=kdf.alg, opslimit=kdf.opslimit, memlimit_kib=kdf.memlimit_kib, salt=kdf.salt
        )
        try:
            check_kdf_params(params)
            open_public_keys(public_keys)
            header = slot_info(slot)
        except CryptoError:
            raise InvalidInput(
                "The client sent keys this server cannot accept. Update the app and try again."
            ) from None
        if header.slot_type != SLOT_PASSWORD or header.kdf != params:
            raise InvalidInput(
                "The password key slot does not match its parameters. Update the app."
            )
        # Argon2 first: no database connection is held while a worker thread hashes.
        auth_hash = await self.ctx.hasher.hash(auth_key)
        existing = await self._by_email(email)
        if existing is not None:
            await self._send(
                email,
                "Someone tried to register with your email",
                "Someone (maybe you) tried to create a SecurePACS account with this address,\n"
                "which already has one. If it was you, sign in or use Forgot your password?.\n"
                "If not, you can ignore this mail: nothing changed.\n",
            )
            return
        account = Account(
            email=email,
            kdf_alg=params.alg,
            kdf_opslimit=params.opslimit,
            kdf_memlimit_kib=params.memlimit_kib,
            kdf_salt=params.salt,
            public_keys=public_keys,
            auth_hash=auth_hash,
            needs_recovery=False,
        )
        self.db.add(account)
        try:
            await self.db.flush()
        except IntegrityError:
            # A concurrent registration of the same address won; answer as for an existing one.
            await self.db.rollback()
            return
        self.db.add(KeySlot(account_id=account.id, slot_type=SLOT_PASSWORD, envelope=slot))
        await self._mail_confirmation(account)

    async def _mail_token(self, account: Account, purpose: str) -> str:
        token, token_hash = new_token()
        hours = self.ctx.settings.token_hours
        self.db.add(
            EmailToken(
                token_hash=token_hash,
                account_id=account.id,
                purpose=purpose,
                expires_at=utcnow() + timedelta(hours=hours),
            )
        )
        return f"{self.ctx.settings.public_url}/{purpose}#{token}"

    async def _mail_link(
        self, account: Account, purpose: str, subject: str, body: Callable[[str], str]
    ) -> None:
        """Store a single-use token, commit, then mail ``body(link)`` to the account."""
        link = await self._mail_token(account, purpose)
        await self.db.commit()
        await self._send(account.email, subject, body(link))

    async def _mail_confirmation(self, account: Account) -> None:
        hours = self.ctx.settings.token_hours
        await self._mail_link(
            account,
            CONFIRM,
            "Confirm your SecurePACS account",
            lambda link: (
                f"Open this link to confirm your email address:\n\n{link}\n\n"
                f"The link works once and expires in {hours} hours.\n"
            ),
        )

    async def _consume_token(self, token: str, purpose: str, invalid: str) -> EmailToken:
        """Mark a mailed token used; ``invalid`` says what to do when it is not usable."""
        row = await self.db.get(EmailToken, hash_token(token))
        now = utcnow()
        if row is None or row.purpose != purpose or row.used_at is not None or row.expires_at < now:
            raise NotFound(invalid)
        row.used_at = now
        return row

    async def _send(self, to: str, subject: str, body: str) -> None:
        await self.ctx.mailer.send(compose(self.ctx.settings.mail_from, to, subject, body))

    async def resend_confirmation(self, email: str) -> None:
        """Mail a fresh link if the address has an unconfirmed account; answer the same anyway."""
        account = await self._by_email(normalize_email(email))
        if account is None or account.email_confirmed_at is not None:
            return
        await self._mail_confirmation(account)

    async def confirm(self, token: str) -> None:
        """Consume a confirmation token."""
        row = await self._consume_token(
            token,
            CONFIRM,
            "This confirmation link is invalid or has expired. "
            "Use Resend email confirmation to get a new one.",
        )
        account = await self.db.get(Account, row.account_id)
        if account is not None and account.email_confirmed_at is None:
            account.email_confirmed_at = row.used_at
        await self.db.commit()

    async def prelogin(self, email: str) -> KdfParamsWire:
        """The account's KDF parameters, or stable fake ones for an unknown address."""
        email = normalize_email(email)
        account = await self._by_email(email)
        if account is None:
            return _wire(fake_kdf_params(self.ctx.settings.secret_key, email))
        return _wire(account_params(account))

    async def login(
        self,
        email: str,
        auth_key: bytes,
        remember: bool,
        ip: str,
        agent: str,
        totp_code: str | None = None,
        recovery_code: str | None = None,
    ) -> tuple[str, Session, LoginResponse]:
        """Verify the authentication key and open a session; returns the cookie token too."""
        email = normalize_email(email)
        account = await self._by_email(email)
        stored = account.auth_hash if account else None
        # Hand the connection back while Argon2 runs: under a burst of sign-ins, waiting for a
        # worker thread must not hold one of the pool's connections (or a PostgreSQL transaction).
        await self.db.rollback()
        ok = await self.ctx.hasher.verify(stored, auth_key)
        account = await self._by_email(email) if ok else None
        if account is None:
            raise WrongCredentials
        if account.email_confirmed_at is None:
            raise EmailNotConfirmed
        await check_second_factor(self.db, account, totp_code, recovery_code)
        token, token_hash = new_token()
        settings = self.ctx.settings
        lifetime = (
            timedelta(days=settings.remember_days)
            if remember
            else timedelta(hours=settings.session_hours)
        )
        session = Session(
            account_id=account.id,
            token_hash=token_hash,
            expires_at=utcnow() + lifetime,
            remember=remember,
            ip_address=ip[:45],
            user_agent=agent[:200],
        )
        self.db.add(session)
        await self.db.commit()
        return token, session, await self.login_view(account)

    async def login_view(self, account: Account) -> LoginResponse:
        """What a client needs to unlock: public keys and every key slot."""
        slots = await self.db.execute(
            select(KeySlot).where(KeySlot.account_id == account.id).order_by(KeySlot.created_at)
        )
        return LoginResponse(
            account_id=account.id,
            email=account.email,
            public_keys=account.public_keys,
            key_slots=[
                SlotOut(
                    id=slot.id,
                    slot_type=slot.slot_type,
                    key_uid=slot.key_uid.hex() if slot.key_uid else None,
                    envelope=slot.envelope,
                )
                for slot in slots.scalars()
            ],
            needs_recovery=account.needs_recovery,
        )

    async def resolve(self, token: str | None) -> SignedIn:
        """The session behind a cookie token; expired sessions are deleted on sight."""
        if not token:
            raise NotAuthenticated
        # One query for both: this runs before every authenticated request.
        found = await self.db.execute(
            select(Session, Account)
            .join(Account, Account.id == Session.account_id)
            .where(Session.token_hash == hash_token(token))
        )
        row = found.one_or_none()
        now = utcnow()
        if row is None:
            raise NotAuthenticated
        session, account = row[0], row[1]
        if session.expires_at <= now:
            await self.db.delete(session)
            await self.db.commit()
            raise NotAuthenticated
        if now - session.last_seen_at > timedelta(minutes=1):
            session.last_seen_at = now
            await self.db.commit()
        return SignedIn(session, account)

    async def logout(self, signed_in: SignedIn) -> None:
        """End the current session."""
        await self.db.execute(delete(Session).where(Session.id == signed_in.session.id))
        await self.db.commit()

    async def me(self, signed_in: SignedIn) -> MeResponse:
        """My Account."""
        account = signed_in.account
        uids = await self.db.execute(
            select(KeySlot.key_uid).where(
                KeySlot.account_id == account.id, KeySlot.key_uid.is_not(None)
            )
        )
        return MeResponse(
            account_id=account.id,
            email=account.email,
            created_at=account.created_at,
            email_confirmed=account.email_confirmed_at is not None,
            needs_recovery=account.needs_recovery,
            recovery_key_uids=sorted(uid.hex() for uid in uids.scalars() if uid),
            two_factor_enabled=await is_enabled(self.db, account),
            features=list(self.ctx.settings.features),
            notify_shares=account.notify_shares,
        )

    async def sessions(self, signed_in: SignedIn) -> list[SessionOut]:
        """My sessions, newest first."""
        rows = await self.db.execute(
            select(Session)
            .where(Session.account_id == signed_in.account.id, Session.expires_at > utcnow())
            .order_by(Session.created_at.desc())
        )
        return [
            SessionOut(
                id=row.id,
                created_at=row.created_at,
                last_seen_at=row.last_seen_at,
                expires_at=row.expires_at,
                remember=row.remember,
                current=row.id == signed_in.session.id,
                ip_address=row.ip_address,
                user_agent=row.user_agent,
            )
            for row in rows.scalars()
        ]

    async def revoke_session(self, signed_in: SignedIn, session_id: str) -> None:
        """Revoke one of my sessions (another account's id is simply not found)."""
        result = await self.db.execute(
            delete(Session).where(
                Session.id == session_id, Session.account_id == signed_in.account.id
            )
        )
        if not getattr(result, "rowcount", 0):
            raise NotFound
        await self.db.commit()

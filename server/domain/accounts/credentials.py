"""Password change, password reset by mail, and recovery-key slots (protocol.md §5.3, §5.4).

The server never re-wraps anything: clients send finished envelopes. What the server enforces
is consistency: the password slot it stores always carries the parameters that pre-login hands
out, except between a password reset and the recovery that follows it (``needs_recovery``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from sqlalchemy import delete, select

from securepacs.crypto import CryptoError, slot_info
from securepacs.crypto.account import SLOT_PASSWORD, SLOT_RECOVERY
from securepacs.crypto.kdf import KdfParams, check_kdf_params
from securepacs.server.db.base import utcnow
from securepacs.server.db.models import Account, KeySlot, Session
from securepacs.server.domain.accounts.services import (
    AccountService,
    SignedIn,
    account_params,
    normalize_email,
)
from securepacs.server.errors import InvalidInput, NotFound, WrongCredentials

if TYPE_CHECKING:
    from securepacs.server.domain.accounts.schemas import KdfParamsWire

__all__ = ("CredentialService",)

RESET: Final = "reset"
_BAD_KEYS: Final = "The client sent keys this server cannot accept. Update the app and try again."


def _params(wire: KdfParamsWire) -> KdfParams:
    params = KdfParams(
        alg=wire.alg, opslimit=wire.opslimit, memlimit_kib=wire.memlimit_kib, salt=wire.salt
    )
    try:
        check_kdf_params(params)
    except CryptoError:
        raise InvalidInput(_BAD_KEYS) from None
    return params


def _slot(envelope: bytes, slot_type: int, kdf: KdfParams | None = None) -> bytes | None:
    """Check a slot's shape and type; returns its Key UID (None for a password slot)."""
    try:
        header = slot_info(envelope)
    except CryptoError:
        raise InvalidInput(_BAD_KEYS) from None
    if header.slot_type != slot_type or (kdf is not None and header.kdf != kdf):
        raise InvalidInput(_BAD_KEYS)
    return header.key_uid or None


class CredentialService(AccountService):
    """Changes to what unlocks an account."""

    async def _replace_password_slot(self, account: Account, envelope: bytes) -> None:
        await self.db.execute(
            delete(KeySlot).where(
                KeySlot.account_id == account.id, KeySlot.slot_type == SLOT_PASSWORD
            )
        )
        self.db.add(KeySlot(account_id=account.id, slot_type=SLOT_PASSWORD, envelope=envelope))

    def _set_password(self, account: Account, params: KdfParams, auth_hash: str) -> None:
        account.kdf_alg = params.alg
        account.kdf_opslimit = params.opslimit
        account.kdf_memlimit_kib = params.memlimit_kib
        account.kdf_salt = params.salt
        account.auth_hash = auth_hash

    async def change_password(
        self,
        me: SignedIn,
        current_auth_key: bytes,
        kdf: KdfParamsWire,
        auth_key: bytes,
        envelope: bytes,
    ) -> None:
        """Swap the password slot and authentication key; other sessions end."""
        account = me.account
        if not await self.ctx.hasher.verify(account.auth_hash, current_auth_key):
            raise WrongCredentials("The current password is wrong.")
        params = _params(kdf)
        _slot(envelope, SLOT_PASSWORD, params)
        self._set_password(account, params, await self.ctx.hasher.hash(auth_key))
        account.needs_recovery = False
        await self._replace_password_slot(account, envelope)
        await self.db.execute(
            delete(Session).where(Session.account_id == account.id, Session.id != me.session.id)
        )
        await self.db.commit()

    async def request_reset(self, email: str) -> None:
        """Mail a reset link if the address has an account; the answer is the same anyway."""
        account = await self._by_email(normalize_email(email))
        if account is None:
            return
        await self._mail_link(
            account,
            RESET,
            "Reset your SecurePACS password",
            lambda link: (
                "Open this link to choose a new password:\n\n"
                f"{link}\n\n"
                "A new password restores sign-in. To open your existing studies afterwards\n"
                "you will need your SecurePACS recovery key (or your last password).\n"
                "If you did not ask for this, ignore this mail: nothing changes.\n"
            ),
        )

    async def complete_reset(self, token: str, kdf: KdfParamsWire, auth_key: bytes) -> None:
        """Set a new password's parameters and key; keep old slots; end every session."""
        params = _params(kdf)
        row = await self._consume_token(
            token,
            RESET,
            "This password reset link is invalid or has expired. "
            "Use Forgot your password? again to get a new one.",
        )
        now = row.used_at or utcnow()
        account = await self.db.get(Account, row.account_id)
        if account is None:
            raise NotFound
        self._set_password(account, params, await self.ctx.hasher.hash(auth_key))
        account.needs_recovery = True
        # Reaching the mailbox proves the address, as a confirmation link would.
        account.email_confirmed_at = account.email_confirmed_at or now
        await self.db.execute(delete(Session).where(Session.account_id == account.id))
        await self.db.commit()

    async def store_recovered_password_slot(self, me: SignedIn, envelope: bytes) -> None:
        """After a reset: the bundle re-wrapped under the new password ends the recovery."""
        account = me.account
        _slot(envelope, SLOT_PASSWORD, account_params(account))
        await self._replace_password_slot(account, envelope)
        account.needs_recovery = False
        await self.db.commit()

    async def add_recovery_key(self, me: SignedIn, envelope: bytes, replace: bool) -> list[str]:
        """Store a recovery-key slot (optionally invalidating all others); returns the Key UIDs."""
        uid = _slot(envelope, SLOT_RECOVERY)
        account = me.account
        if replace:
            await self.invalidate_recovery_keys(me, commit=False)
        else:
            await self.db.execute(
                delete(KeySlot).where(KeySlot.account_id == account.id, KeySlot.key_uid == uid)
            )
        self.db.add(
            KeySlot(account_id=account.id, slot_type=SLOT_RECOVERY, key_uid=uid, envelope=envelope)
        )
        await self.db.commit()
        return await self.recovery_key_uids(me)

    async def invalidate_recovery_keys(self, me: SignedIn, *, commit: bool = True) -> None:
        """Delete every recovery-key slot (a kept copy of a slot is not this server's to erase)."""
        await self.db.execute(
            delete(KeySlot).where(
                KeySlot.account_id == me.account.id, KeySlot.slot_type == SLOT_RECOVERY
            )
        )
        if commit:
            await self.db.commit()

    async def recovery_key_uids(self, me: SignedIn) -> list[str]:
        """Key UIDs of the account's recovery keys."""
        rows = await self.db.execute(
            select(KeySlot.key_uid).where(
                KeySlot.account_id == me.account.id, KeySlot.slot_type == SLOT_RECOVERY
            )
        )
        return sorted(uid.hex() for uid in rows.scalars() if uid)

    async def delete_account(self, me: SignedIn, auth_key: bytes) -> None:
        """Delete the account and everything it owns (cascades to slots, sessions, tokens)."""
        if not await self.ctx.hasher.verify(me.account.auth_hash, auth_key):
            raise WrongCredentials("The password is wrong.")
        await self.db.delete(me.account)
        await self.db.commit()

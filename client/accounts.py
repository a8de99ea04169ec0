"""Account flows on the client: every key is made, unlocked and re-wrapped here (ZK-1).

The server receives public keys, envelopes and the authentication key; the password, the
key-encryption key, the recovery key and the account's private keys never leave this module.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from securepacs.client.api import ApiClient, LoginView, b64, kdf_json
from securepacs.crypto import (
    SLOT_PASSWORD,
    AccountKeys,
    AuthenticationFailed,
    KdfParams,
    PasswordKeys,
    RecoveryKey,
    change_password,
    create_account,
    derive_password_keys,
    new_recovery_key,
    open_slot,
    seal_slot,
    slot_info,
    unlock_with_password,
    unlock_with_secret,
)
from securepacs.crypto.kdf import new_kdf_params

if TYPE_CHECKING:
    from securepacs.client.transport import Transport

__all__ = ("AccountFlows", "RecoveryNeeded", "Unlocked", "token_from_link")


class RecoveryNeeded(Exception):
    """Signed in after a password reset: the studies need the recovery key or the old password."""

    def __init__(self, view: LoginView, password_keys: PasswordKeys, params: KdfParams) -> None:
        super().__init__(
            "Your password was reset. Load your SecurePACS recovery key (or enter your last "
            "password) to restore access to your studies."
        )
        self.view = view
        self.password_keys = password_keys
        self.params = params


class Unlocked:
    """A signed-in account with its keys open in memory."""

    def __init__(self, keys: AccountKeys, view: LoginView, params: KdfParams) -> None:
        self.keys = keys
        self.view = view
        self.params = params

    def __repr__(self) -> str:
        return f"<Unlocked {self.view.email}>"


def token_from_link(link: str) -> str:
    """The token of a mailed link (after '#'), or the argument itself if it is a bare token."""
    return link.split("#", 1)[1] if "#" in link else link.strip()


def _params(raw: dict[str, Any]) -> KdfParams:
    return KdfParams(
        alg=int(raw["alg"]),
        opslimit=int(raw["opslimit"]),
        memlimit_kib=int(raw["memlimit_kib"]),
        salt=base64.b64decode(raw["salt"]),
    )


def _check_keys(keys: AccountKeys, view: LoginView) -> None:
    # The server hands out both the slots and the public keys; they must belong together.
    if keys.public.encoded != view.public_keys:
        raise AuthenticationFailed


def _open(view: LoginView, keys: PasswordKeys, params: KdfParams) -> Unlocked:
    """Open the password slot of ``view``, or ask for recovery after a reset."""
    if view.needs_recovery:
        raise RecoveryNeeded(view, keys, params)
    [slot] = [s for s in view.key_slots if s.slot_type == SLOT_PASSWORD]
    account = open_slot(slot.envelope, keys.kek)
    _check_keys(account, view)
    return Unlocked(account, view, params)


class AccountFlows:
    """Register, confirm, sign in, recover, change password, manage recovery keys and 2FA."""

    def __init__(self, transport: Transport) -> None:
        self.api = ApiClient(transport)

    async def register(self, email: str, password: str, *, kdf: KdfParams | None = None) -> None:
        """Create keys for a new account and register them; a confirmation mail follows."""
        new = create_account(password, kdf=kdf)
        params = slot_info(new.password_slot).kdf
        assert params is not None  # noqa: S101 -- a password slot always carries its parameters
        await self.api.register(
            {
                "email": email,
                "kdf": kdf_json(params),
                "auth_key": b64(new.password_keys.auth_key.to_bytes()),
                "public_keys": b64(new.keys.public.encoded),
                "password_slot": b64(new.password_slot),
            }
        )

    async def confirm(self, link: str) -> None:
        """Confirm the email address with the mailed link (or its token)."""
        await self.api.confirm(token_from_link(link))

    async def password_keys(self, email: str, password: str) -> tuple[PasswordKeys, KdfParams]:
        """Pre-login, then Argon2id with the parameters the server holds for this email."""
        params = _params(await self.api.prelogin(email))
        return derive_password_keys(password, params), params

    async def login(
        self,
        email: str,
        password: str,
        *,
        totp_code: str | None = None,
        recovery_code: str | None = None,
        remember: bool = False,
    ) -> Unlocked:
        """Sign in and unlock the account's keys with the password.

        Raises:
            RecoveryNeeded: the password was reset; call :meth:`recover` next.
            ApiError: the server refused (wrong password, unconfirmed, two-factor...).
            CryptoError: the slot or keys the server returned do not verify.
        """
        keys, params = await self.password_keys(email, password)
        body: dict[str, Any] = {
            "email": email,
            "auth_key": b64(keys.auth_key.to_bytes()),
            "remember": remember,
        }
        if totp_code:
            body["totp_code"] = totp_code
        if recovery_code:
            body["recovery_code"] = recovery_code
        return _open(await self.api.login(body), keys, params)

    async def unlock(self, password: str) -> Unlocked:
        """Unlock the keys of the signed-in account (no new session, no second factor).

        Raises:
            RecoveryNeeded: the password was reset and the keys are not re-wrapped yet.
            AuthenticationFailed: wrong password, or slots that do not match the public keys.
        """
        view = await self.api.keys()
        keys, params = await self.password_keys(view.email, password)
        return _open(view, keys, params)

    async def recover(
        self,
        needed: RecoveryNeeded,
        *,
        recovery_key: RecoveryKey | None = None,
        old_password: str | None = None,
    ) -> Unlocked:
        """Open the old slots with the recovery key (or last password) and re-wrap the keys."""
        view = needed.view
        slots = [s.envelope for s in view.key_slots]
        if recovery_key is not None:
            account = unlock_with_secret(slots, recovery_key)
        elif old_password is not None:
            [slot] = [s.envelope for s in view.key_slots if s.slot_type == SLOT_PASSWORD]
            account, _ = unlock_with_password(old_password, slot)
        else:
            raise ValueError("recover needs a recovery key or the old password")
        _check_keys(account, view)
        await self.api.store_password_slot(
            seal_slot(account, needed.password_keys.kek, kdf=needed.params)
        )
        return Unlocked(account, view, needed.params)

    async def change_password(self, unlocked: Unlocked, old: str, new: str) -> None:
        """Re-wrap the key bundle under a new password; other sessions end."""
        current = derive_password_keys(old, unlocked.params)
        params = new_kdf_params()
        new_keys, slot = change_password(unlocked.keys, new, kdf=params)
        await self.api.change_password(
            {
                "current_auth_key": b64(current.auth_key.to_bytes()),
                "kdf": kdf_json(params),
                "auth_key": b64(new_keys.auth_key.to_bytes()),
                "password_slot": b64(slot),
            }
        )
        unlocked.params = params

    async def create_recovery_key(self, unlocked: Unlocked, *, replace: bool) -> RecoveryKey:
        """A new recovery key, its slot stored on the server; show it once, then forget it."""
        key = new_recovery_key()
        await self.api.add_recovery_key(seal_slot(unlocked.keys, key), replace)
        return key

    async def forgot_password(self, email: str) -> None:
        """Ask for a reset link by mail."""
        await self.api.request_reset(email)

    async def reset_password(self, link: str, new_password: str) -> None:
        """Set a new password from the mailed link (sign-in works again; studies need recovery)."""
        params = new_kdf_params()
        keys = derive_password_keys(new_password, params)
        await self.api.complete_reset(
            {
                "token": token_from_link(link),
                "kdf": kdf_json(params),
                "auth_key": b64(keys.auth_key.to_bytes()),
            }
        )

"""TOTP two-factor authentication (RFC 6238 via pyotp) and its single-use recovery codes.

Enabling is two steps: the server creates a secret and an otpauth URI for the authenticator
app; a first valid code confirms it and returns ten recovery codes, shown once and stored as
hashes. A code is accepted once: the last accepted time step is remembered, so a code seen by
a shoulder-surfer cannot be replayed within its window.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import TYPE_CHECKING, Final

import pyotp
from sqlalchemy import delete, select

from securepacs.server.db.base import utcnow
from securepacs.server.db.models import TwoFactor, TwoFactorRecoveryCode
from securepacs.server.errors import Conflict, DomainError, NotFound

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from securepacs.server.db.models import Account

__all__ = (
    "TwoFactorInvalid",
    "TwoFactorRequired",
    "check_second_factor",
    "confirm_totp",
    "disable_totp",
    "is_enabled",
    "start_totp",
)

ISSUER: Final = "SecurePACS"
RECOVERY_CODES: Final = 10
_STEP_SECONDS: Final = 30
_ALPHABET: Final = "abcdefghjkmnpqrstuvwxyz23456789"


class TwoFactorRequired(DomainError):
    """Right password, and the account asks for a second factor."""

    status = 401
    code = "two_factor_required"
    detail = "Enter the code from your authenticator app, or one of your two-factor recovery codes."


class TwoFactorInvalid(DomainError):
    """The second factor did not match (or was already used)."""

    status = 401
    code = "two_factor_invalid"
    detail = (
        "That code is not valid. Enter the current code from your authenticator app, "
        "or an unused two-factor recovery code."
    )


def _code_hash(code: str) -> bytes:
    normalized = code.replace("-", "").replace(" ", "").lower()
    return hashlib.sha256(normalized.encode("ascii", "replace")).digest()


def _new_recovery_code() -> str:
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def _accept_totp(row: TwoFactor, code: str) -> bool:
    code = code.strip().replace(" ", "")
    if not (len(code) == 6 and code.isdigit()):
        return False
    totp = pyotp.TOTP(row.secret)
    now_step = int(time.time()) // _STEP_SECONDS
    for step in (now_step - 1, now_step, now_step + 1):
        if step > row.last_step and hmac.compare_digest(totp.at(step * _STEP_SECONDS), code):
            row.last_step = step
            return True
    return False


async def _row(db: AsyncSession, account: Account) -> TwoFactor | None:
    return await db.get(TwoFactor, account.id)


async def start_totp(db: AsyncSession, account: Account) -> tuple[str, str]:
    """A fresh pending secret (replacing any pending one) and its otpauth URI."""
    row = await _row(db, account)
    if row is not None and row.enabled_at is not None:
        raise Conflict("Two-factor authentication is already on. Turn it off first to reset it.")
    secret = pyotp.random_base32()
    if row is None:
        db.add(TwoFactor(account_id=account.id, secret=secret, last_step=0))
    else:
        row.secret, row.last_step = secret, 0
    await db.commit()
    uri = pyotp.TOTP(secret).provisioning_uri(name=account.email, issuer_name=ISSUER)
    return secret, uri


async def confirm_totp(db: AsyncSession, account: Account, code: str) -> list[str]:
    """Turn two-factor on with a first valid code; returns the ten recovery codes, once."""
    row = await _row(db, account)
    if row is None or row.enabled_at is not None:
        raise NotFound("Start setting up two-factor authentication first.")
    if not _accept_totp(row, code):
        raise TwoFactorInvalid
    row.enabled_at = utcnow()
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODES)]
    await db.execute(
        delete(TwoFactorRecoveryCode).where(TwoFactorRecoveryCode.account_id == account.id)
    )
    db.add_all(TwoFactorRecoveryCode(account_id=account.id, code_hash=_code_hash(c)) for c in codes)
    await db.commit()
    return codes


async def disable_totp(db: AsyncSession, account: Account, code: str) -> None:
    """Turn two-factor off; needs a current code or an unused recovery code."""
    row = await _row(db, account)
    if row is None or row.enabled_at is None:
        raise NotFound("Two-factor authentication is not on.")
    await check_second_factor(db, account, code, code)
    await db.delete(row)
    await db.execute(
        delete(TwoFactorRecoveryCode).where(TwoFactorRecoveryCode.account_id == account.id)
    )
    await db.commit()


async def is_enabled(db: AsyncSession, account: Account) -> bool:
    """Whether sign-in asks this account for a second factor."""
    row = await _row(db, account)
    return row is not None and row.enabled_at is not None


async def check_second_factor(
    db: AsyncSession, account: Account, totp_code: str | None, recovery_code: str | None
) -> None:
    """Pass if two-factor is off, or a code is valid; a recovery code is used up.

    Raises:
        TwoFactorRequired: two-factor is on and no code was given.
        TwoFactorInvalid: the codes given do not match.
    """
    row = await _row(db, account)
    if row is None or row.enabled_at is None:
        return
    if not totp_code and not recovery_code:
        raise TwoFactorRequired
    if totp_code and _accept_totp(row, totp_code):
        await db.flush()
        return
    if recovery_code:
        found = await db.execute(
            select(TwoFactorRecoveryCode).where(
                TwoFactorRecoveryCode.account_id == account.id,
                TwoFactorRecoveryCode.code_hash == _code_hash(recovery_code),
                TwoFactorRecoveryCode.used_at.is_(None),
            )
        )
        used = found.scalar_one_or_none()
        if used is not None:
            used.used_at = utcnow()
            await db.flush()
            return
    raise TwoFactorInvalid

"""TOTP two-factor state and single-use recovery codes (stored as hashes)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from securepacs.server.db.base import Base, Opaque, UtcDateTime, utcnow

__all__ = ("TwoFactor", "TwoFactorRecoveryCode")


class TwoFactor(Base):
    """An account's TOTP secret: pending until a first code confirms it, then enabled."""

    __tablename__ = "two_factor"

    account_id: Mapped[str] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), primary_key=True
    )
    # The server's own verification secret (like a password hash, not the person's data).
    secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    enabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    # The last accepted time step: a code is accepted once, never replayed.
    last_step: Mapped[int] = mapped_column(default=0)


class TwoFactorRecoveryCode(Base):
    """One of ten single-use codes for the sign-in prompt (not the SecurePACS recovery key)."""

    __tablename__ = "two_factor_recovery_code"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    account_id: Mapped[str] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[bytes] = mapped_column(Opaque(32))
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)

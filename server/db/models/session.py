"""A server-side session: the cookie carries a random token, the table only its hash."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from securepacs.server.db.base import Base, Opaque, UtcDateTime, utcnow

__all__ = ("Session",)


class Session(Base):
    """One signed-in browser or CLI. Revoking deletes the row; the cookie then opens nothing."""

    __tablename__ = "session"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    account_id: Mapped[str] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[bytes] = mapped_column(Opaque(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    remember: Mapped[bool] = mapped_column(Boolean, default=False)
    # What My Account shows next to a session so a person recognises it (threat model §3).
    ip_address: Mapped[str] = mapped_column(String(45), default="")
    user_agent: Mapped[str] = mapped_column(String(200), default="")

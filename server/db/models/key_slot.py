"""A key slot: the account bundle wrapped under one unlocking secret (protocol.md §5.3)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from securepacs.server.db.base import Base, Opaque, UtcDateTime, utcnow

__all__ = ("KeySlot",)


class KeySlot(Base):
    """The envelope is opaque; the type and Key UID are what the envelope shows anyway."""

    __tablename__ = "key_slot"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    account_id: Mapped[str] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), index=True
    )
    slot_type: Mapped[int] = mapped_column(Integer)
    key_uid: Mapped[bytes | None] = mapped_column(Opaque(16), default=None)
    envelope: Mapped[bytes] = mapped_column(Opaque(1024))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

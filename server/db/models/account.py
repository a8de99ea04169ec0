"""An account: an email, KDF parameters, public keys and the hash of the authentication key."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from securepacs.server.db.base import Base, Opaque, UtcDateTime, utcnow

__all__ = ("Account",)


class Account(Base):
    """What the server knows about a person (docs/threat-model.md §3), and nothing more."""

    __tablename__ = "account"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    email: Mapped[str] = mapped_column(String(254), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    email_confirmed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    kdf_alg: Mapped[int] = mapped_column(Integer)
    kdf_opslimit: Mapped[int] = mapped_column(Integer)
    kdf_memlimit_kib: Mapped[int] = mapped_column(Integer)
    kdf_salt: Mapped[bytes] = mapped_column(Opaque(16))
    public_keys: Mapped[bytes] = mapped_column(Opaque(256))
    # argon2-cffi encoded hash of the client's authentication key (never the key itself).
    auth_hash: Mapped[str] = mapped_column(String(200))
    # Set by a password reset: the password slot no longer matches the new password, so the
    # next sign-in must re-wrap with the recovery key or the last usable password.
    needs_recovery: Mapped[bool] = mapped_column(Boolean, default=False)
    # None: the plan default (SECUREPACS_STORAGE_LIMIT_MB); set per account by an operator.
    storage_limit_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)
    # Bytes of this account's blobs that are not being deleted, kept in step by the studies
    # service in the same transactions that reserve and release space.
    used_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # My Account, Notifications: "Email me on studies shared with me".
    notify_shares: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

"""Shares and anonymous links: sealed grants, link envelopes, and who may read which study.

The server stores what the sharer's client sealed and signed (protocol.md §8, §9) and enforces
the terms it can see: permission and expiry (ZK-5, server-enforced). It learns who shares with
whom (ZK-2), never the study key: a grant is sealed to the recipient, a link envelope is wrapped
under a key derived from a secret that never leaves the link's URL fragment.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from securepacs.server.db.base import Base, Opaque, UtcDateTime, utcnow

__all__ = ("Endorsement", "Link", "Share")


class Share(Base):
    """A study shared with one person, by email; pending until it carries a grant.

    A share to an email with no account yet has no recipient and no grant: the sharer's client
    seals the grant once that person has registered (protocol.md §15.3).
    """

    __tablename__ = "share"
    __table_args__ = (UniqueConstraint("study_id", "recipient_email", name="uq_share_study_email"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), index=True)
    granter_id: Mapped[str] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    recipient_email: Mapped[str] = mapped_column(String(254))
    recipient_id: Mapped[str | None] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), index=True, default=None
    )
    permission: Mapped[int] = mapped_column(Integer)
    # None: no expiry. Equal to the grant's expires_at, which the server checks on every write.
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    grant: Mapped[bytes | None] = mapped_column(Opaque(512), default=None)
    # The sender's message, sealed under a key derived from the study key (protocol.md §15.2).
    note: Mapped[bytes | None] = mapped_column(Opaque(), default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Link(Base):
    """An anonymous link: its envelope, the verifier of its access key, and its terms.

    A revoked link keeps its row without its envelope, so that its recipient is told that the
    link was revoked rather than that it never existed.
    """

    __tablename__ = "link"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), index=True)
    creator_id: Mapped[str] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    permission: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    envelope: Mapped[bytes | None] = mapped_column(Opaque(512), default=None)
    # BLAKE2b-256 of the labelled access key (protocol.md §9.2): checks possession, opens nothing.
    verifier: Mapped[bytes] = mapped_column(Opaque(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)


class Endorsement(Base):
    """A grant of Edit or Admin ever made for a study, kept after its share ends.

    Readers accept a manifest signed by someone a trusted person gave Edit (protocol.md §15.4);
    the manifest outlives the share, so the proof that its signer was allowed must too, or
    revoking an editor would leave the study unreadable for everyone.
    """

    __tablename__ = "endorsement"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), index=True)
    grant: Mapped[bytes] = mapped_column(Opaque(512))
    # The recipient's public keys when the grant was made (their self-signature binds the
    # grant's X25519 key to the Ed25519 key that signs manifests).
    recipient_keys: Mapped[bytes] = mapped_column(Opaque(256))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

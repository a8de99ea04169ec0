"""Studies and their blobs: opaque envelopes, ciphertext sizes, and who owns them (ZK-1).

A blob is one sealed instance, stored as numbered parts; its id is the file id that its stream
header carries anyway (protocol.md §7.2), so naming it reveals nothing new. A study row holds only
what its owner's client sealed: the wrapped study key, the metadata box and the signed manifest.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from securepacs.server.db.base import Base, Opaque, UtcDateTime, utcnow

__all__ = ("Blob", "BlobPart", "BlobState", "Study")


class BlobState:
    """Where a blob is in its life; a deleting blob no longer counts towards storage."""

    UPLOADING = "uploading"
    COMPLETE = "complete"
    DELETING = "deleting"


class Study(Base):
    """A committed study; it exists only once every blob it lists is complete."""

    __tablename__ = "study"
    __table_args__ = (UniqueConstraint("owner_id", "uid_tag", name="uq_study_owner_uid_tag"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    # Keyed hash of the StudyInstanceUID under the owner's account key (protocol.md §6.5).
    uid_tag: Mapped[bytes] = mapped_column(Opaque(32))
    wrapped_key: Mapped[bytes] = mapped_column(Opaque(512))
    metadata_box: Mapped[bytes] = mapped_column(Opaque())
    manifest: Mapped[bytes] = mapped_column(Opaque())
    manifest_version: Mapped[int] = mapped_column(Integer)
    instance_count: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Blob(Base):
    """One sealed instance; ``study_id`` is set when a commit makes it part of a study."""

    __tablename__ = "blob"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    study_id: Mapped[str | None] = mapped_column(
        ForeignKey("study.id", ondelete="SET NULL"), index=True, default=None
    )
    size: Mapped[int] = mapped_column(BigInteger)
    part_size: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default=BlobState.UPLOADING, index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class BlobPart(Base):
    """A received part: its size and the SHA-256 the client declared and the server checked."""

    __tablename__ = "blob_part"

    blob_id: Mapped[str] = mapped_column(
        ForeignKey("blob.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[bytes] = mapped_column(Opaque(32))

"""Studies, their blobs and parts, a per-account storage limit and its usage counter.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from securepacs.server.db.base import Opaque, UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create study, blob and blob_part; add account.storage_limit_bytes."""
    with op.batch_alter_table("account") as batch:
        batch.add_column(sa.Column("storage_limit_bytes", sa.BigInteger(), nullable=True))
        batch.add_column(
            sa.Column("used_bytes", sa.BigInteger(), nullable=False, server_default="0")
        )
    op.create_table(
        "study",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("owner_id", sa.String(36), nullable=False),
        sa.Column("uid_tag", Opaque(32), nullable=False),
        sa.Column("wrapped_key", Opaque(512), nullable=False),
        sa.Column("metadata_box", Opaque(), nullable=False),
        sa.Column("manifest", Opaque(), nullable=False),
        sa.Column("manifest_version", sa.Integer(), nullable=False),
        sa.Column("instance_count", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["account.id"], name=op.f("fk_study_owner_id_account"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_study")),
        sa.UniqueConstraint("owner_id", "uid_tag", name="uq_study_owner_uid_tag"),
    )
    op.create_index(op.f("ix_study_owner_id"), "study", ["owner_id"], unique=False)
    op.create_table(
        "blob",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("owner_id", sa.String(36), nullable=False),
        sa.Column("study_id", sa.String(32), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("part_size", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["account.id"], name=op.f("fk_blob_owner_id_account"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["study_id"], ["study.id"], name=op.f("fk_blob_study_id_study"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blob")),
    )
    op.create_index(op.f("ix_blob_owner_id"), "blob", ["owner_id"], unique=False)
    op.create_index(op.f("ix_blob_study_id"), "blob", ["study_id"], unique=False)
    op.create_index(op.f("ix_blob_state"), "blob", ["state"], unique=False)
    op.create_table(
        "blob_part",
        sa.Column("blob_id", sa.String(32), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", Opaque(32), nullable=False),
        sa.ForeignKeyConstraint(
            ["blob_id"], ["blob.id"], name=op.f("fk_blob_part_blob_id_blob"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("blob_id", "number", name=op.f("pk_blob_part")),
    )


def downgrade() -> None:
    """Drop the study tables and the storage limit column."""
    op.drop_table("blob_part")
    op.drop_index(op.f("ix_blob_state"), table_name="blob")
    op.drop_index(op.f("ix_blob_study_id"), table_name="blob")
    op.drop_index(op.f("ix_blob_owner_id"), table_name="blob")
    op.drop_table("blob")
    op.drop_index(op.f("ix_study_owner_id"), table_name="study")
    op.drop_table("study")
    with op.batch_alter_table("account") as batch:
        batch.drop_column("used_bytes")
        batch.drop_column("storage_limit_bytes")

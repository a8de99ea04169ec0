"""Shares, anonymous links, endorsements and the share email preference.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from securepacs.server.db.base import Opaque, UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create share, link and endorsement; add account.notify_shares."""
    with op.batch_alter_table("account") as batch:
        batch.add_column(
            sa.Column("notify_shares", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "share",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("study_id", sa.String(32), nullable=False),
        sa.Column("granter_id", sa.String(36), nullable=False),
        sa.Column("recipient_email", sa.String(254), nullable=False),
        sa.Column("recipient_id", sa.String(36), nullable=True),
        sa.Column("permission", sa.Integer(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=True),
        sa.Column("grant", Opaque(512), nullable=True),
        sa.Column("note", Opaque(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["study_id"], ["study.id"], name=op.f("fk_share_study_id_study"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["granter_id"],
            ["account.id"],
            name=op.f("fk_share_granter_id_account"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["recipient_id"],
            ["account.id"],
            name=op.f("fk_share_recipient_id_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_share")),
        sa.UniqueConstraint("study_id", "recipient_email", name="uq_share_study_email"),
    )
    op.create_index(op.f("ix_share_study_id"), "share", ["study_id"], unique=False)
    op.create_index(op.f("ix_share_recipient_id"), "share", ["recipient_id"], unique=False)
    op.create_table(
        "link",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("study_id", sa.String(32), nullable=False),
        sa.Column("creator_id", sa.String(36), nullable=False),
        sa.Column("permission", sa.Integer(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=True),
        sa.Column("envelope", Opaque(512), nullable=True),
        sa.Column("verifier", Opaque(32), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["study_id"], ["study.id"], name=op.f("fk_link_study_id_study"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["creator_id"],
            ["account.id"],
            name=op.f("fk_link_creator_id_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link")),
    )
    op.create_index(op.f("ix_link_study_id"), "link", ["study_id"], unique=False)
    op.create_table(
        "endorsement",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("study_id", sa.String(32), nullable=False),
        sa.Column("grant", Opaque(512), nullable=False),
        sa.Column("recipient_keys", Opaque(256), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["study.id"],
            name=op.f("fk_endorsement_study_id_study"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_endorsement")),
    )
    op.create_index(op.f("ix_endorsement_study_id"), "endorsement", ["study_id"], unique=False)


def downgrade() -> None:
    """Drop what upgrade created."""
    op.drop_index(op.f("ix_endorsement_study_id"), table_name="endorsement")
    op.drop_table("endorsement")
    op.drop_index(op.f("ix_link_study_id"), table_name="link")
    op.drop_table("link")
    op.drop_index(op.f("ix_share_recipient_id"), table_name="share")
    op.drop_index(op.f("ix_share_study_id"), table_name="share")
    op.drop_table("share")
    with op.batch_alter_table("account") as batch:
        batch.drop_column("notify_shares")

"""TOTP two-factor authentication and its recovery codes.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from securepacs.server.db.base import Opaque, UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the two-factor tables."""
    op.create_table(
        "two_factor",
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.Column("secret", sa.String(64), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("enabled_at", UtcDateTime(), nullable=True),
        sa.Column("last_step", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["account.id"],
            name=op.f("fk_two_factor_account_id_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_two_factor")),
    )
    op.create_table(
        "two_factor_recovery_code",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.Column("code_hash", Opaque(32), nullable=False),
        sa.Column("used_at", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["account.id"],
            name=op.f("fk_two_factor_recovery_code_account_id_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_two_factor_recovery_code")),
    )
    op.create_index(
        op.f("ix_two_factor_recovery_code_account_id"),
        "two_factor_recovery_code",
        ["account_id"],
        unique=False,
    )


def downgrade() -> None:
    """Drop the two-factor tables."""
    op.drop_index(
        op.f("ix_two_factor_recovery_code_account_id"), table_name="two_factor_recovery_code"
    )
    op.drop_table("two_factor_recovery_code")
    op.drop_table("two_factor")

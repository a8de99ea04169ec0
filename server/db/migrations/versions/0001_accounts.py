"""Accounts, key slots, sessions and mailed tokens.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from securepacs.server.db.base import Opaque, UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the account tables."""
    op.create_table(
        "account",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("email_confirmed_at", UtcDateTime(), nullable=True),
        sa.Column("kdf_alg", sa.Integer(), nullable=False),
        sa.Column("kdf_opslimit", sa.Integer(), nullable=False),
        sa.Column("kdf_memlimit_kib", sa.Integer(), nullable=False),
        sa.Column("kdf_salt", Opaque(16), nullable=False),
        sa.Column("public_keys", Opaque(256), nullable=False),
        sa.Column("auth_hash", sa.String(200), nullable=False),
        sa.Column("needs_recovery", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account")),
        sa.UniqueConstraint("email", name=op.f("uq_account_email")),
    )
    tables: tuple[tuple[str, list[sa.schema.SchemaItem]], ...] = (
        (
            "key_slot",
            [
                sa.Column("id", sa.String(36), nullable=False),
                sa.Column("slot_type", sa.Integer(), nullable=False),
                sa.Column("key_uid", Opaque(16), nullable=True),
                sa.Column("envelope", Opaque(1024), nullable=False),
                sa.Column("created_at", UtcDateTime(), nullable=False),
                sa.PrimaryKeyConstraint("id", name=op.f("pk_key_slot")),
            ],
        ),
        (
            "session",
            [
                sa.Column("id", sa.String(36), nullable=False),
                sa.Column("token_hash", Opaque(32), nullable=False),
                sa.Column("created_at", UtcDateTime(), nullable=False),
                sa.Column("last_seen_at", UtcDateTime(), nullable=False),
                sa.Column("expires_at", UtcDateTime(), nullable=False),
                sa.Column("remember", sa.Boolean(), nullable=False),
                sa.Column("ip_address", sa.String(45), nullable=False),
                sa.Column("user_agent", sa.String(200), nullable=False),
                sa.PrimaryKeyConstraint("id", name=op.f("pk_session")),
                sa.UniqueConstraint("token_hash", name=op.f("uq_session_token_hash")),
            ],
        ),
        (
            "email_token",
            [
                sa.Column("token_hash", Opaque(32), nullable=False),
                sa.Column("purpose", sa.String(16), nullable=False),
                sa.Column("created_at", UtcDateTime(), nullable=False),
                sa.Column("expires_at", UtcDateTime(), nullable=False),
                sa.Column("used_at", UtcDateTime(), nullable=True),
                sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_email_token")),
            ],
        ),
    )
    for table, columns in tables:
        op.create_table(
            table,
            sa.Column("account_id", sa.String(36), nullable=False),
            *columns,
            sa.ForeignKeyConstraint(
                ["account_id"],
                ["account.id"],
                name=op.f(f"fk_{table}_account_id_account"),
                ondelete="CASCADE",
            ),
        )
        op.create_index(op.f(f"ix_{table}_account_id"), table, ["account_id"], unique=False)


def downgrade() -> None:
    """Drop the account tables."""
    for table in ("email_token", "session", "key_slot"):
        op.drop_index(op.f(f"ix_{table}_account_id"), table_name=table)
        op.drop_table(table)
    op.drop_table("account")

"""One Alembic history for both dialects: up, down and up again, and it matches the models."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from securepacs.server.db.base import Base
from securepacs.server.db.engine import create_engine
from securepacs.server.db.migrate import downgrade, upgrade

pytestmark = pytest.mark.anyio

TABLES = {
    "account",
    "blob",
    "blob_part",
    "study",
    "share",
    "link",
    "endorsement",
    "key_slot",
    "session",
    "email_token",
    "two_factor",
    "two_factor_recovery_code",
    "alembic_version",
}


async def test_migrations_run_down_and_up_and_match_the_models(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        await downgrade(engine)
        async with engine.connect() as connection:
            left = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert left <= {"alembic_version"}
        await upgrade(engine)
        await upgrade(engine)  # idempotent
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
            diff = await connection.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)
            )
        assert tables == TABLES
        assert diff == []
    finally:
        await downgrade(engine)
        await engine.dispose()

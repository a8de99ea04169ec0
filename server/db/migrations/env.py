"""Alembic environment: always runs on the connection that securepacs.server.db.migrate passes."""

from __future__ import annotations

from alembic import context

from securepacs.server.db import models  # noqa: F401 -- registers every table on the metadata
from securepacs.server.db.base import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite alters tables by copying them; batch mode makes one history work on both dialects.
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()

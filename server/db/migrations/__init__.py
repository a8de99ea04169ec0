"""The single Alembic history; env.py runs it on a connection handed over by migrate.py."""

"""Persistence: async SQLAlchemy engines, typed models, one Alembic history for both dialects."""

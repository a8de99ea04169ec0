"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

from litestar import get
from litestar.di import NamedDependency
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from securepacs.server.context import ServerContext
from securepacs.server.domain.accounts.schemas import StatusResponse
from securepacs.server.errors import DomainError

__all__ = ("health", "ready")


class NotReady(DomainError):
    """A dependency of the server does not answer."""

    status = 503
    code = "not_ready"
    detail = "The server is starting or its database is unreachable. Try again shortly."


@get("/health", tags=["operations"])
async def health() -> StatusResponse:
    """The process is up."""
    return StatusResponse(status="ok")


@get("/ready", tags=["operations"])
async def ready(
    db: NamedDependency[AsyncSession], ctx: NamedDependency[ServerContext]
) -> StatusResponse:
    """The database and the blob store answer (503 otherwise)."""
    try:
        await db.execute(text("SELECT 1"))
        await ctx.blobs.check()
    except Exception:  # noqa: BLE001 -- any failure below means "not ready", by design
        raise NotReady from None
    return StatusResponse(status="ready")

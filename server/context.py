"""What handlers share, built once by create_app: settings, engine, hasher, mailer."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

    from securepacs.server.blobs import BlobStore
    from securepacs.server.mail import Mailer
    from securepacs.server.ratelimit import RateLimiter
    from securepacs.server.security import AuthKeyHasher
    from securepacs.server.settings import Settings

__all__ = ("ServerContext",)


class ServerContext:
    """The app's collaborators; handlers receive it through dependency injection."""

    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        sessions: async_sessionmaker[AsyncSession],
        hasher: AuthKeyHasher,
        mailer: Mailer,
        limiter: RateLimiter,
        blobs: BlobStore,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.sessions = sessions
        self.hasher = hasher
        self.mailer = mailer
        self.limiter = limiter
        self.blobs = blobs

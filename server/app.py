"""The composition root: ``create_app(settings)`` builds the whole server and nothing else does.

No I/O happens at import or construction; the database is migrated and opened in the app's
lifespan, so tests and the CLI can build an app without touching anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, Any

from litestar import Litestar, Request
from litestar.di import NamedDependency, Provide
from litestar.openapi import OpenAPIConfig
from sqlalchemy.ext.asyncio import AsyncSession

from securepacs.server.blobs import BlobStore
from securepacs.server.context import ServerContext
from securepacs.server.db.engine import create_engine, session_factory
from securepacs.server.db.migrate import upgrade
from securepacs.server.domain.accounts.controllers import (
    SESSION_COOKIE,
    AccountController,
    AuthController,
    MeController,
)
from securepacs.server.domain.accounts.credentials import CredentialService
from securepacs.server.domain.accounts.services import AccountService, SignedIn
from securepacs.server.domain.health import health, ready
from securepacs.server.domain.shares.controllers import LinkController, ShareController
from securepacs.server.domain.shares.services import ShareService
from securepacs.server.domain.studies.controllers import BlobController, StudyController
from securepacs.server.domain.studies.services import StudyService, sweep_forever
from securepacs.server.edge import EdgeMiddleware
from securepacs.server.errors import exception_handlers
from securepacs.server.mail import Mailer, OutboxMailer, SmtpMailer
from securepacs.server.ratelimit import RateLimiter
from securepacs.server.security import AuthKeyHasher
from securepacs.server.web import web_routes

if TYPE_CHECKING:
    from securepacs.server.settings import Settings

__all__ = ("create_app",)

API_VERSION = "0.1.0"


def _mailer(settings: Settings) -> Mailer:
    if settings.smtp_url:
        return SmtpMailer(settings.smtp_url)
    return OutboxMailer(settings.outbox_dir)


def create_app(settings: Settings, *, migrate: bool = True) -> Litestar:
    """Build the SecurePACS server for ``settings``."""
    engine = create_engine(settings.database_url)
    ctx = ServerContext(
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        hasher=AuthKeyHasher(settings.argon2_workers),
        mailer=_mailer(settings),
        limiter=RateLimiter(),
        blobs=BlobStore(settings.blob_url),
    )

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        if migrate:
            await upgrade(engine)
        sweeper = asyncio.create_task(sweep_forever(ctx)) if migrate else None
        try:
            yield
        finally:
            if sweeper is not None:
                sweeper.cancel()
                with suppress(asyncio.CancelledError):
                    await sweeper
            await engine.dispose()

    def provide_ctx() -> ServerContext:
        return ctx

    async def provide_db() -> AsyncIterator[AsyncSession]:
        async with ctx.sessions() as session:
            yield session

    def provide_accounts(db: NamedDependency[AsyncSession]) -> CredentialService:
        return CredentialService(ctx, db)

    def provide_studies(db: NamedDependency[AsyncSession]) -> StudyService:
        return StudyService(ctx, db)

    def provide_shares(db: NamedDependency[AsyncSession]) -> ShareService:
        return ShareService(ctx, db)

    async def provide_me(
        request: Request[Any, Any, Any], accounts: NamedDependency[AccountService]
    ) -> SignedIn:
        return await accounts.resolve(request.cookies.get(SESSION_COOKIE))

    app = Litestar(
        route_handlers=[
            health,
            ready,
            AccountController,
            AuthController,
            MeController,
            BlobController,
            StudyController,
            ShareController,
            LinkController,
            *web_routes(),
        ],
        dependencies={
            "ctx": Provide(provide_ctx, sync_to_thread=False),
            "db": Provide(provide_db),
            "accounts": Provide(provide_accounts, sync_to_thread=False),
            "studies": Provide(provide_studies, sync_to_thread=False),
            "shares": Provide(provide_shares, sync_to_thread=False),
            "me": Provide(provide_me),
        },
        exception_handlers=exception_handlers(),  # type: ignore[arg-type]
        openapi_config=OpenAPIConfig(
            title="SecurePACS API", version=API_VERSION, path="/api/schema"
        ),
        lifespan=[lifespan],
        # Handlers import these for type checking only; Litestar resolves hints at runtime.
        signature_namespace={
            "AsyncSession": AsyncSession,
            "AsyncIterator": AsyncIterator,
            "ServerContext": ServerContext,
            "AccountService": AccountService,
            "CredentialService": CredentialService,
            "SignedIn": SignedIn,
            "StudyService": StudyService,
            "ShareService": ShareService,
            "NamedDependency": NamedDependency,
        },
        request_max_body_size=4 * 1024 * 1024,
        logging_config=None,
        debug=False,
    )
    # Outermost, around routing itself: Litestar runs the middleware it is given only for
    # requests that match a route, and a 404 or 405 of the router must carry the security
    # headers and be logged like any other response.
    app.asgi_handler = EdgeMiddleware(app.asgi_handler, behind_tls=settings.behind_tls)
    return app

"""``securepacs`` command line: serve, database migrations, configuration check."""

from __future__ import annotations

import argparse
import asyncio
import sys

from securepacs.server.settings import ConfigError, Settings, load_settings

__all__ = ("main",)


def _serve(settings: Settings) -> None:
    import uvicorn

    from securepacs.server.app import create_app
    from securepacs.server.logging import configure_logging

    configure_logging(settings.log_level)
    print(f"SecurePACS on {settings.public_url} ({settings})", flush=True)  # noqa: T201
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_config=None,
        proxy_headers=False,
    )


def _db_upgrade(settings: Settings) -> None:
    from securepacs.server.db.engine import create_engine
    from securepacs.server.db.migrate import upgrade

    async def run() -> None:
        engine = create_engine(settings.database_url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())
    print("database is at the latest revision", flush=True)  # noqa: T201


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``securepacs`` console script."""
    parser = argparse.ArgumentParser(prog="securepacs", description="SecurePACS server")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve on SECUREPACS_HOST:SECUREPACS_PORT")
    db = commands.add_parser("db", help="database operations")
    db.add_argument("action", choices=["upgrade"])
    commands.add_parser("check-config", help="validate the SECUREPACS_* settings and exit")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as error:
        print(f"securepacs: configuration error: {error}", file=sys.stderr)  # noqa: T201
        return 2
    if args.command == "serve":
        _serve(settings)
    elif args.command == "db":
        _db_upgrade(settings)
    else:
        print(f"configuration is valid: {settings}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Settings from ``SECUREPACS_*`` environment variables, parsed and validated once at start-up.

An invalid value stops start-up with a message naming the variable, never its value (it may be a
secret). Defaults give a one-node install: SQLite, a local blob store and a mail outbox under the
data directory, served on http://127.0.0.1:8000.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

import msgspec

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ("ConfigError", "Settings", "load_settings")

_PREFIX: Final = "SECUREPACS_"
_SECRET_FILE: Final = "server-secret"  # noqa: S105 -- a file name
_MAIL_FROM: Final = "SecurePACS <no-reply@securepacs.invalid>"
_LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")


class ConfigError(Exception):
    """A setting is invalid; the message names the variable and what it must be."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything the server is configured with. Secrets are redacted from ``repr``."""

    data_dir: Path
    database_url: str
    blob_url: str
    public_url: str
    host: str = "127.0.0.1"
    port: int = 8000
    smtp_url: str | None = None
    mail_from: str = _MAIL_FROM
    secret_key: bytes = b""
    log_level: str = "INFO"
    session_hours: int = 12
    remember_days: int = 30
    token_hours: int = 24
    argon2_workers: int = 2
    storage_limit_mb: int = 10_240
    upload_ttl_hours: int = 48
    # The plan's optional features every account gets until plans exist (user manual: "Open in
    # advanced Viewer ... shown as inactive on plans where this feature is not included").
    features: tuple[str, ...] = ("advanced_viewer",)

    @property
    def storage_limit_bytes(self) -> int:
        """The storage each account may fill unless its own limit says otherwise."""
        return self.storage_limit_mb * 1024 * 1024

    @property
    def behind_tls(self) -> bool:
        """Cookies get ``Secure`` and responses HSTS when the public URL is https."""
        return self.public_url.startswith("https://")

    @property
    def outbox_dir(self) -> Path:
        """Where mail goes when no SMTP server is configured."""
        return self.data_dir / "outbox"

    def __repr__(self) -> str:
        # The secret key and any credentials in URLs stay out of logs and tracebacks.
        return (
            f"Settings(data_dir={str(self.data_dir)!r}, database={_scheme(self.database_url)}, "
            f"blobs={_scheme(self.blob_url)}, public_url={self.public_url!r}, "
            f"smtp={'yes' if self.smtp_url else 'outbox'})"
        )

    __str__ = __repr__


def _scheme(url: str) -> str:
    return urlsplit(url).scheme or "?"


FEATURES: Final = ("advanced_viewer",)


def _features(env: Mapping[str, str]) -> tuple[str, ...]:
    """SECUREPACS_FEATURES: comma-separated plan features; empty switches every one off."""
    raw = env.get(_PREFIX + "FEATURES")
    if raw is None:
        return FEATURES
    chosen = tuple(sorted({f.strip() for f in raw.split(",") if f.strip()}))
    unknown = [f for f in chosen if f not in FEATURES]
    if unknown:
        raise ConfigError(
            f"{_PREFIX}FEATURES names an unknown feature; known: {', '.join(FEATURES)}"
        )
    return chosen


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(_PREFIX + name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{_PREFIX}{name} must be a whole number") from None
    if not low <= value <= high:
        raise ConfigError(f"{_PREFIX}{name} must be between {low} and {high}")
    return value


def _database_url(env: Mapping[str, str], data_dir: Path) -> str:
    url = env.get(_PREFIX + "DATABASE_URL") or f"sqlite+aiosqlite:///{data_dir / 'securepacs.db'}"
    if not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise ConfigError(
            f"{_PREFIX}DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
        )
    return url


def _blob_url(env: Mapping[str, str], data_dir: Path) -> str:
    url = env.get(_PREFIX + "BLOB_URL") or (data_dir / "blobs").resolve().as_uri()
    if urlsplit(url).scheme not in ("file", "s3", "memory"):
        raise ConfigError(f"{_PREFIX}BLOB_URL must be a file://, s3:// or memory:// URL")
    return url


def _public_url(env: Mapping[str, str], host: str, port: int) -> str:
    url = env.get(_PREFIX + "PUBLIC_URL") or f"http://{host}:{port}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(
            f"{_PREFIX}PUBLIC_URL must be an http(s) origin, e.g. https://pacs.example"
        )
    return url.rstrip("/")


def _smtp_url(env: Mapping[str, str]) -> str | None:
    url = env.get(_PREFIX + "SMTP_URL")
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps", "smtp+starttls") or not parts.hostname:
        raise ConfigError(
            f"{_PREFIX}SMTP_URL must be smtp://, smtps:// or smtp+starttls://host:port"
        )
    return url


def _secret_key(env: Mapping[str, str], data_dir: Path) -> bytes:
    raw = env.get(_PREFIX + "SECRET_KEY")
    if raw:
        try:
            key = bytes.fromhex(raw)
        except ValueError:
            raise ConfigError(f"{_PREFIX}SECRET_KEY must be hex (64 digits)") from None
        if len(key) != 32:
            raise ConfigError(f"{_PREFIX}SECRET_KEY must be 32 bytes (64 hex digits)")
        return key
    # One node, zero setup: a random key kept beside the data, readable by the owner only.
    path = data_dir / _SECRET_FILE
    if path.is_file():
        key = path.read_bytes()
        if len(key) == 32:
            return key
        raise ConfigError(f"{path} is damaged: delete it or set {_PREFIX}SECRET_KEY")
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key)
    return key


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Parse ``SECUREPACS_*`` variables (``os.environ`` by default).

    Raises:
        ConfigError: a variable is invalid; the message names it and says what it must be.
    """
    env = os.environ if env is None else env
    data_dir = Path(env.get(_PREFIX + "DATA_DIR") or "securepacs-data").resolve()
    host = env.get(_PREFIX + "HOST") or "127.0.0.1"
    port = _int(env, "PORT", 8000, 1, 65535)
    log_level = (env.get(_PREFIX + "LOG_LEVEL") or "INFO").upper()
    if log_level not in _LOG_LEVELS:
        raise ConfigError(f"{_PREFIX}LOG_LEVEL must be one of {', '.join(_LOG_LEVELS)}")
    return Settings(
        data_dir=data_dir,
        database_url=_database_url(env, data_dir),
        blob_url=_blob_url(env, data_dir),
        public_url=_public_url(env, host, port),
        host=host,
        port=port,
        smtp_url=_smtp_url(env),
        mail_from=env.get(_PREFIX + "MAIL_FROM") or _MAIL_FROM,
        secret_key=_secret_key(env, data_dir),
        log_level=log_level,
        session_hours=_int(env, "SESSION_HOURS", 12, 1, 24 * 7),
        remember_days=_int(env, "REMEMBER_DAYS", 30, 1, 365),
        token_hours=_int(env, "TOKEN_HOURS", 24, 1, 24 * 14),
        argon2_workers=_int(env, "ARGON2_WORKERS", 2, 1, 64),
        storage_limit_mb=_int(env, "STORAGE_LIMIT_MB", 10_240, 1, 1 << 40),
        upload_ttl_hours=_int(env, "UPLOAD_TTL_HOURS", 48, 1, 24 * 90),
        features=_features(env),
    )

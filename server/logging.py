"""Logging by allowlist: only named fields of known-safe meaning ever reach a log line.

A record's message is a fixed string chosen by the code; its variable parts travel in ``extra``
and the formatter prints only the keys listed in :data:`ALLOWED_FIELDS` (request id, route
template, method, status, duration, opaque ids, error codes, byte counts). Anything else a
library attaches to a record, including its formatted arguments, is dropped.
"""

from __future__ import annotations

import logging
import sys
from typing import Final

__all__ = ("ALLOWED_FIELDS", "AllowlistFormatter", "configure_logging")

ALLOWED_FIELDS: Final = (
    "request_id",
    "method",
    "route",
    "status",
    "duration_ms",
    "code",
    "error_type",
    "account_id",
    "session_id",
    "bytes",
    "count",
    "event",
)


class AllowlistFormatter(logging.Formatter):
    """``time level logger message key=value...`` with allowlisted keys only."""

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(
            f"{key}={getattr(record, key)}" for key in ALLOWED_FIELDS if hasattr(record, key)
        )
        # record.msg, not getMessage(): %-arguments of third-party records may carry data.
        message = record.msg if isinstance(record.msg, str) else type(record.msg).__name__
        stamp = self.formatTime(record, "%Y-%m-%dT%H:%M:%S")
        return f"{stamp} {record.levelname} {record.name} {message} {fields}".rstrip()


def configure_logging(level: str) -> None:
    """Route every logger (ours, Litestar's, uvicorn's) through the allowlist formatter."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(AllowlistFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The access log of uvicorn prints full request lines with query strings; ours replaces it.
    logging.getLogger("uvicorn.access").disabled = True

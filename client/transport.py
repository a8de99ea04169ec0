"""The transport seam: how the client core reaches the API.

httpx implements it on CPython (client/httpx_transport.py); the browser worker implements it
over fetch. Nothing here imports either, so the core loads in both places.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Protocol

import msgspec

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = (
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "Transport",
    "TransportFailure",
    "TransportResponse",
    "json_body",
)

CSRF_HEADER: Final = "X-SecurePACS-CSRF"
SESSION_COOKIE: Final = "securepacs_session"


class TransportFailure(Exception):
    """The request did not get an answer (connection refused or reset, timeout)."""


class TransportResponse(msgspec.Struct, frozen=True):
    """Status and body of one response."""

    status: int
    body: bytes
    retry_after: str | None = None


class Transport(Protocol):
    """Sends a JSON request to the SecurePACS API and returns the raw response."""

    async def request(self, method: str, path: str, body: Any = None) -> TransportResponse:
        """``body`` is encoded as JSON (bytes as base64); cookies are kept by the transport."""
        ...

    async def send(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> TransportResponse:
        """A request with a raw body and extra headers (blob parts, ranged downloads)."""
        ...


def json_body(body: Any) -> tuple[bytes | None, dict[str, str]]:
    """The content and headers of an API request carrying ``body`` as JSON (None: no body)."""
    if body is None:
        return None, {}
    return msgspec.json.encode(body), {"content-type": "application/json"}

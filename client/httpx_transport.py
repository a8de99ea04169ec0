"""The transport on CPython: httpx with a cookie jar, for the CLI, the gateway and the tests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import httpx

from securepacs.client.transport import (
    CSRF_HEADER,
    SESSION_COOKIE,
    TransportFailure,
    TransportResponse,
    json_body,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping
    from types import TracebackType

__all__ = ("HttpxTransport",)


_ONE_SHOT_BYTES: Final = 64 * 1024


class _OneShot:
    """A request body that hands its bytes over once and keeps no reference to them."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        data, self._data = self._data, b""
        yield data


class HttpxTransport:
    """httpx with a cookie jar; ``session`` restores a saved session cookie."""

    def __init__(self, base_url: str, *, session: str | None = None, timeout: float = 60) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout,
            headers={CSRF_HEADER: "1"},
            # Parallel part uploads share one pool; keep-alive saves a handshake per request.
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=16),
        )
        if session:
            # Same domain as the server's Set-Cookie, so a new session replaces this one.
            host = urlsplit(self.base_url).hostname or ""
            self._client.cookies.set(SESSION_COOKIE, session, domain=host)

    @property
    def session(self) -> str | None:
        """The current session cookie, to save between CLI runs."""
        values = [c.value for c in self._client.cookies.jar if c.name == SESSION_COOKIE]
        return values[-1] if values else None

    async def request(self, method: str, path: str, body: Any = None) -> TransportResponse:
        """Send one request with the session cookie and the app's CSRF header."""
        content, headers = json_body(body)
        return await self.send(method, path, content=content, headers=headers)

    async def send(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> TransportResponse:
        """Send raw bytes (or nothing) with extra headers."""
        extra = dict(headers or {})
        body: bytes | _OneShot | None = content
        if content is not None and len(content) >= _ONE_SHOT_BYTES:
            # httpx keeps each response in a reference cycle with its request, and the request
            # with its body, until the cycle collector runs: 8 MiB parts would pile up. A
            # one-shot stream lets go of the bytes as soon as they are sent.
            body = _OneShot(content)
            extra["content-length"] = str(len(content))
        try:
            response = await self._client.request(method, path, content=body, headers=extra)
        except httpx.TransportError as error:
            # Only the type: httpx messages can carry the URL, and URLs can carry ids.
            raise TransportFailure(type(error).__name__) from None
        return TransportResponse(
            response.status_code, response.content, response.headers.get("retry-after")
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def __aenter__(self) -> HttpxTransport:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.aclose()

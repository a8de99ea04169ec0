"""The HTTP edge: request ids, security headers on every response, the allowlisted access log.

One ASGI middleware so that no response, not even an error raised before routing, leaves
without the headers, and every request is logged once with its route template (never its path,
which can carry ids, nor its query string, which can carry tokens).
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from typing import TYPE_CHECKING, Final

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ("CSP", "CSRF_HEADER", "EdgeMiddleware", "security_headers")

_log = logging.getLogger("securepacs.access")

# No inline script, no eval, wasm allowed; workers and every fetch only from our own origin.
CSP: Final = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def security_headers(behind_tls: bool) -> list[tuple[str, str]]:
    """The headers every response carries."""
    headers = [
        ("Content-Security-Policy", CSP),
        ("Referrer-Policy", "no-referrer"),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
        ("Cross-Origin-Resource-Policy", "same-origin"),
        ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"),
    ]
    if behind_tls:
        headers.append(("Strict-Transport-Security", "max-age=63072000; includeSubDomains"))
    return headers


CSRF_HEADER: Final = "x-securepacs-csrf"
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


def _forged(scope: Scope) -> bool:
    # A browser sends a custom header cross-origin only after a CORS preflight, which this
    # server never approves: requiring it on every write stops cross-site request forgery
    # even where SameSite cookies are not honoured.
    if scope.get("method", "GET") in _SAFE_METHODS or not scope["path"].startswith("/api/"):
        return False
    headers = dict(scope.get("headers", []))
    return headers.get(CSRF_HEADER.encode()) != b"1"


async def _refuse_forged(send: Send, request_id: str) -> None:
    body = json.dumps(
        {
            "type": "https://securepacs.invalid/problems/csrf",
            "title": "Forbidden",
            "status": 403,
            "code": "csrf",
            "detail": "This request did not come from the SecurePACS app. Reload the page.",
            "request_id": request_id,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


class EdgeMiddleware:
    """Wraps the whole app (create_app installs it outermost)."""

    def __init__(self, app: ASGIApp, *, behind_tls: bool) -> None:
        self.app = app
        self.headers = security_headers(behind_tls)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        request_id = secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableScopeHeaders.from_message(message)
                for name, value in self.headers:
                    headers[name] = value
                headers["X-Request-Id"] = request_id
                headers.setdefault("Cache-Control", "no-store")
            await send(message)

        try:
            if _forged(scope):
                await _refuse_forged(send_with_headers, request_id)
                return
            await self.app(scope, receive, send_with_headers)
        finally:
            _log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope.get("method", ""),
                    "route": scope.get("path_template") or "-",
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )

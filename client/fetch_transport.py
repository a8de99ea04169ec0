"""The transport in the browser worker: the platform's fetch, from Pyodide.

The page and the API share an origin, so the browser keeps the session cookie (HttpOnly: this
code never sees it) and sends it with ``credentials: "same-origin"``. Redirects are refused
rather than followed: the API never redirects, and a redirect could carry a request elsewhere.
Importable only in Pyodide (``js`` and ``pyodide`` are its modules).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import js  # type: ignore[import-not-found]
from pyodide.ffi import JsException, to_js  # type: ignore[import-not-found]

from securepacs.client.transport import CSRF_HEADER, TransportFailure, TransportResponse, json_body

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ("FetchTransport",)


class FetchTransport:
    """fetch() on ``base_url`` (empty: the page's own origin)."""

    def __init__(self, base_url: str = "") -> None:
        self.base_url = base_url.rstrip("/")

    async def request(self, method: str, path: str, body: Any = None) -> TransportResponse:
        """Send one JSON request with the app's CSRF header."""
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
        init: dict[str, Any] = {
            "method": method,
            "headers": {CSRF_HEADER: "1", **(headers or {})},
            "credentials": "same-origin",
            "redirect": "error",
            "cache": "no-store",
        }
        if content is not None:
            init["body"] = to_js(content)  # a Uint8Array copy of the bytes
        try:
            response = await js.fetch(
                self.base_url + path, to_js(init, dict_converter=js.Object.fromEntries)
            )
            data = (await response.arrayBuffer()).to_bytes()
        except JsException as error:
            # Only the error's name: its message can carry the URL, and URLs can carry ids.
            raise TransportFailure(str(error.name)) from None
        retry_after = response.headers.get("retry-after")
        return TransportResponse(int(response.status), bytes(data), retry_after or None)

"""A static file server with the production security headers, and how Chromium is started.

The Chromium tests serve their pages and ``wasm/dist`` with it, under the same CSP the
SecurePACS server sends. Standard library only, so it runs before any dependency is installed.
"""

from __future__ import annotations

import mimetypes
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeVar

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

__all__ = ("CHROMIUM", "CHROMIUM_ARGS", "CSP", "StaticSite", "serve_in_thread")

WASM_DIR: Final = Path(__file__).resolve().parent

# The policy the production server sends: no inline script, no eval, wasm allowed, workers and
# every other fetch only from our own origin.
CSP: Final = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)

# Debian's chromium, and what it needs headless on these machines (design.md §6). The browser
# tests and bench/browser.py start it so; tests/pyodide/browser/chromium.mjs, in Node, keeps
# the same list.
CHROMIUM: Final = Path("/usr/bin/chromium")
CHROMIUM_ARGS: Final = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

_CONTENT_TYPES: Final = {
    # Browsers refuse module scripts without a JavaScript type, and streaming wasm compilation
    # needs application/wasm; the stdlib table does not know .mjs everywhere.
    ".mjs": "text/javascript",
    ".js": "text/javascript",
    ".wasm": "application/wasm",
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".py": "text/plain; charset=utf-8",
    ".whl": "application/octet-stream",
    ".zip": "application/zip",
}


class StaticSite(ThreadingHTTPServer):
    """Serves folders under URL prefixes (``{"/": page, "/dist/": dist}``) plus generated files."""

    daemon_threads = True

    def __init__(
        self,
        mounts: Mapping[str, Path],
        generated: Mapping[str, bytes] | None = None,
        address: tuple[str, int] = ("127.0.0.1", 0),
    ) -> None:
        # Longest prefix first, so "/dist/" wins over "/".
        self.mounts = sorted(
            ((prefix, root.resolve()) for prefix, root in mounts.items()),
            key=lambda item: -len(item[0]),
        )
        self.generated = dict(generated or {})
        super().__init__(address, _Handler)

    @property
    def base_url(self) -> str:
        """``http://host:port/`` of the bound socket."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/"

    def resolve(self, url_path: str) -> Path | None:
        """The file behind ``url_path``, or None when it is absent or outside every mount."""
        path = url_path.split("?", 1)[0].split("#", 1)[0]
        for prefix, root in self.mounts:
            if path == prefix.rstrip("/") or path.startswith(prefix):
                relative = path[len(prefix) :].lstrip("/") or "index.html"
                candidate = (root / relative).resolve()
                if candidate.is_relative_to(root) and candidate.is_file():
                    return candidate
                return None
        return None


class _Handler(BaseHTTPRequestHandler):
    server: StaticSite

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        body = self.server.generated.get(path)
        suffix = Path(path).suffix
        if body is None:
            file = self.server.resolve(self.path)
            if file is None:
                self.send_error(HTTPStatus.NOT_FOUND)
                return
            body, suffix = file.read_bytes(), file.suffix
        content_type = _CONTENT_TYPES.get(suffix) or (
            mimetypes.guess_type(f"x{suffix}")[0] or "application/octet-stream"
        )
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        # Access logs would carry request paths; this server logs nothing at all.
        del format, args


Site = TypeVar("Site", bound=ThreadingHTTPServer)


def serve_in_thread(site: Site) -> Iterator[Site]:
    """Run ``site`` in a daemon thread until the generator closes."""
    thread = threading.Thread(target=site.serve_forever, name="static-site", daemon=True)
    thread.start()
    try:
        yield site
    finally:
        site.shutdown()
        site.server_close()
        thread.join(timeout=10)

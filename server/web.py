"""What the server hands to browsers: the web app, its Pyodide runtime, and the protocol self-test.

- ``/`` (and the mailed-link pages ``/confirm`` and ``/reset``): the app's ``index.html`` from
  ``client/web/dist`` (built by ``just web``), revalidated on every visit so a new release is
  picked up at once.
- ``/assets/…``: the app's bundles; Vite puts a content hash in each name, so they are cached
  for good (``immutable``).
- ``/dist/@<digest>/…``: the runtime from ``wasm/dist``, where ``<digest>`` is the first 16 hex
  digits of the SHA-256 of its ``manifest.json``. The app has that digest and the manifest's
  SHA-256 compiled in, so it asks for exactly the runtime it was built with and checks it; a
  digest that is not the current one is a 404 (the page then asks for a reload). Under a
  digest every file is immutable: the second visit starts from the browser's cache.
- ``/dist/…`` without a digest: the same files, revalidated each time, for the protocol
  self-test and the browser tests that load the runtime on its own.
- ``/viewer`` and ``/download``: the viewer and download windows, opened by the app with the
  study id in the fragment; ``/download-sw.js``: the service worker that saves a download.
- ``/selftest/``: the protocol self-test page; the visitor's browser runs every test vector and
  the Wycheproof vectors locally.

All of it needs a source checkout with the builds in place; routes whose files are missing are
absent, and ``/`` then says how to build the app.
"""

from __future__ import annotations

import functools
import hashlib
import json
import mimetypes
from pathlib import Path
from typing import TYPE_CHECKING, Final

from litestar import Response, get
from litestar.params import FromPath
from litestar.response import File

from securepacs.server.errors import NotFound

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler

__all__ = ("APP_DIR", "runtime_digest", "selftest_files", "web_routes")

PROJECT_DIR: Final = Path(__file__).resolve().parent.parent
WASM_DIR: Final = PROJECT_DIR / "wasm"
DIST_DIR: Final = WASM_DIR / "dist"
APP_DIR: Final = PROJECT_DIR / "client" / "web" / "dist"
SELFTEST_PAGE_DIR: Final = WASM_DIR / "selftest"
VECTORS_DIR: Final = PROJECT_DIR / "tests" / "vectors"
WYCHEPROOF_DIR: Final = PROJECT_DIR.parent / "shared" / "vectors" / "wycheproof"

IMMUTABLE: Final = "public, max-age=31536000, immutable"
REVALIDATE: Final = "no-cache"
_TYPES: Final = {
    # Module scripts need a JavaScript type and streaming wasm compilation needs
    # application/wasm; the platform's table does not know .mjs or .whl everywhere.
    ".mjs": "text/javascript",
    ".js": "text/javascript",
    ".wasm": "application/wasm",
    ".json": "application/json",
    ".html": "text/html",
    ".css": "text/css",
    ".py": "text/plain",
    ".whl": "application/octet-stream",
    ".zip": "application/zip",
}


def _media_type(path: Path) -> str:
    guessed = mimetypes.guess_type(path.name)[0]
    return _TYPES.get(path.suffix) or guessed or "application/octet-stream"


def _inside(root: Path, relative: str) -> Path | None:
    """The file ``relative`` under ``root``, or None when absent or outside it."""
    candidate = (root / relative.lstrip("/")).resolve()
    if candidate.is_relative_to(root.resolve()) and candidate.is_file():
        return candidate
    return None


def _file(path: Path, cache: str) -> File:
    return File(
        path,
        media_type=_media_type(path),
        content_disposition_type="inline",
        headers={"Cache-Control": cache},
    )


def runtime_digest() -> str | None:
    """The digest in the runtime's URLs: SHA-256 of ``manifest.json``, 16 hex digits."""
    try:
        stat = (DIST_DIR / "manifest.json").stat()
    except FileNotFoundError:
        return None
    # A stat per runtime request, a read only when `just wasm` rewrote the manifest.
    return _manifest_digest(stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _manifest_digest(mtime_ns: int, size: int) -> str:
    del mtime_ns, size  # the cache key: a rebuilt manifest gets a new entry
    return hashlib.sha256((DIST_DIR / "manifest.json").read_bytes()).hexdigest()[:16]


def selftest_files() -> dict[str, bytes]:
    """The self-test's data: every vector case in one file, the runners, Wycheproof if present."""
    cases = [
        json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(VECTORS_DIR.glob("*/*.json"))
    ]
    files = {
        "cases.json": json.dumps(cases).encode("utf-8"),
        "runner.py": (VECTORS_DIR / "runner.py").read_bytes(),
        "wycheproof_runner.py": (VECTORS_DIR / "wycheproof_runner.py").read_bytes(),
    }
    names = sorted(p.stem for p in WYCHEPROOF_DIR.glob("*_test.json"))
    files["wycheproof.json"] = json.dumps(names).encode("utf-8")
    for name in names:
        files[f"wycheproof/{name}.json"] = (WYCHEPROOF_DIR / f"{name}.json").read_bytes()
    return files


@get("/dist/{path:path}", include_in_schema=False, sync_to_thread=False)
def runtime_file(path: FromPath[str]) -> File:
    """A runtime file: immutable under the current digest, revalidated without one."""
    relative = path.lstrip("/")
    cache = REVALIDATE
    if relative.startswith("@"):
        digest, _, relative = relative[1:].partition("/")
        if digest != runtime_digest():
            raise NotFound("This version of SecurePACS was replaced. Reload the page.")
        cache = IMMUTABLE
    found = _inside(DIST_DIR, relative)
    if found is None:
        raise NotFound
    return _file(found, cache)


@get("/assets/{path:path}", include_in_schema=False, sync_to_thread=False)
def app_asset(path: FromPath[str]) -> File:
    """A bundle of the app; its name carries its content hash."""
    found = _inside(APP_DIR / "assets", path)
    if found is None:
        raise NotFound
    return _file(found, IMMUTABLE)


_NOT_BUILT: Final = (
    "<!doctype html><title>SecurePACS</title><h1>SecurePACS</h1>"
    "<p>The web app is not built. Run <code>just run</code> (or <code>just web</code>), then"
    " reload. The protocol self-test is at <a href=/selftest/>/selftest/</a>.</p>"
)


def _page(name: str) -> Response[bytes] | File:
    index = APP_DIR / name
    if not index.is_file():
        return Response(
            _NOT_BUILT.encode(),
            status_code=503,
            media_type="text/html; charset=utf-8",
            headers={"Cache-Control": REVALIDATE},
        )
    return _file(index, REVALIDATE)


@get(["/", "/confirm", "/reset"], include_in_schema=False, sync_to_thread=False)
def app_page() -> Response[bytes] | File:
    """The app's page; the mailed links land here too, their token in the fragment."""
    return _page("index.html")


@get("/viewer", include_in_schema=False, sync_to_thread=False)
def viewer_page() -> Response[bytes] | File:
    """The viewer window; the study id is in the fragment, its port comes from the opener."""
    return _page("viewer.html")


@get("/download", include_in_schema=False, sync_to_thread=False)
def download_page() -> Response[bytes] | File:
    """The download window ("Keep this page open"), opened like the viewer."""
    return _page("download.html")


@get("/s/{link_id:str}", include_in_schema=False, sync_to_thread=False)
def link_page(link_id: FromPath[str]) -> Response[bytes] | File:
    """An anonymous link's page, the same for every id.

    Its secret is in the fragment, which never reaches the server.
    """
    del link_id
    return _page("link.html")


@get("/download-sw.js", include_in_schema=False, sync_to_thread=False)
def download_worker() -> File:
    """The service worker that turns the download page's zip stream into a file download.

    It must sit at a fixed URL (a service worker's URL cannot change between releases without
    unregistering the old one) and is revalidated on every visit.
    """
    found = _inside(APP_DIR, "download-sw.js")
    if found is None:
        raise NotFound
    return _file(found, REVALIDATE)


def _selftest_routes() -> list[ControllerRouterHandler]:
    data: dict[str, bytes] = {}

    @get("/selftest", include_in_schema=False, sync_to_thread=False)
    def selftest_page() -> File:
        return _file(SELFTEST_PAGE_DIR / "index.html", REVALIDATE)

    @get("/selftest/{name:path}", include_in_schema=False, sync_to_thread=False)
    def selftest(name: FromPath[str]) -> Response[bytes] | File:
        relative = name.lstrip("/")
        page = _inside(SELFTEST_PAGE_DIR, relative)
        if page is not None:
            return _file(page, REVALIDATE)
        # Read on first use, not at start-up: most servers never serve the self-test.
        if not data:
            data.update(selftest_files())
        body = data.get(relative)
        if body is None:
            raise NotFound
        return Response(body, media_type=_media_type(Path(relative)))

    return [selftest_page, selftest]


def web_routes() -> list[ControllerRouterHandler]:
    """The browser-facing routes this checkout can serve."""
    routes: list[ControllerRouterHandler] = [
        app_page,
        viewer_page,
        download_page,
        link_page,
        download_worker,
        app_asset,
    ]
    if (DIST_DIR / "manifest.json").is_file():
        routes.append(runtime_file)
        if VECTORS_DIR.is_dir():
            routes.extend(_selftest_routes())
    return routes

"""Pages the server hands to browsers: for now the protocol self-test and its runtime.

The browser app (client/web) arrives with the browser-client issue. Until then ``/`` is the
protocol self-test: the visitor's browser boots the Pyodide runtime from ``/dist/`` and runs
every protocol test vector and the Wycheproof vectors locally. Both need a source checkout (the
runtime built by ``just wasm``, the vectors under tests/); without one these routes are absent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Final

from litestar import Response, get
from litestar.params import FromPath
from litestar.static_files import create_static_files_router

from securepacs.server.errors import NotFound

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler

__all__ = ("selftest_files", "web_routes")

PROJECT_DIR: Final = Path(__file__).resolve().parent.parent
WASM_DIR: Final = PROJECT_DIR / "wasm"
VECTORS_DIR: Final = PROJECT_DIR / "tests" / "vectors"
WYCHEPROOF_DIR: Final = PROJECT_DIR.parent / "shared" / "vectors" / "wycheproof"
_TYPES: Final = {".json": "application/json", ".py": "text/plain; charset=utf-8"}


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


def web_routes() -> list[ControllerRouterHandler]:
    """Static routes for the self-test, when this is a source checkout with a built runtime."""
    dist = WASM_DIR / "dist"
    if not (dist / "manifest.json").is_file() or not VECTORS_DIR.is_dir():
        return []
    data: dict[str, bytes] = {}

    @get("/selftest/{name:path}", include_in_schema=False, sync_to_thread=False)
    def selftest_data(name: FromPath[str]) -> Response[bytes]:
        # Read on first use, not at start-up: most servers never serve the self-test.
        if not data:
            data.update(selftest_files())
        body = data.get(name.lstrip("/"))
        if body is None:
            raise NotFound
        return Response(body, media_type=_TYPES.get(Path(name).suffix, "application/octet-stream"))

    return [
        selftest_data,
        create_static_files_router(path="/dist", directories=[dist], include_in_schema=False),
        create_static_files_router(
            path="/", directories=[WASM_DIR / "selftest"], html_mode=True, include_in_schema=False
        ),
    ]

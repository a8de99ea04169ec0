"""What the server hands to browsers: the app, its runtime (immutable under its digest), and the
protocol self-test, all under the strict CSP."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from securepacs.server.web import APP_DIR, DIST_DIR, IMMUTABLE, REVALIDATE, runtime_digest

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.testing import AsyncTestClient

pytestmark = pytest.mark.anyio

needs_runtime = pytest.mark.skipif(
    not (DIST_DIR / "manifest.json").is_file(),
    reason="wasm/dist is not built (`just wasm`); `just test` builds it first",
)
needs_app = pytest.mark.skipif(
    not (APP_DIR / "index.html").is_file(),
    reason="client/web/dist is not built (`just web`); `just test` builds it first",
)


@needs_runtime
async def test_web_serves_the_selftest_page_and_vectors(client: AsyncTestClient[Litestar]) -> None:
    page = await client.get("/selftest/")
    assert page.status_code == 200
    assert "SecurePACS protocol self-test" in page.text
    assert "script-src 'self' 'wasm-unsafe-eval'" in page.headers["content-security-policy"]
    assert (
        (await client.get("/selftest/selftest.mjs"))
        .headers["content-type"]
        .startswith("text/javascript")
    )
    cases = json.loads((await client.get("/selftest/cases.json")).content)
    assert len(cases) >= 100
    assert (await client.get("/selftest/missing.json")).status_code == 404


@needs_runtime
async def test_web_runtime_is_immutable_under_its_digest_only(
    client: AsyncTestClient[Litestar],
) -> None:
    digest = runtime_digest()
    assert digest is not None
    manifest = (await client.get(f"/dist/@{digest}/manifest.json")).json()
    assert manifest["wheels"]
    wasm = await client.get(f"/dist/@{digest}/pyodide/pyodide.asm.wasm")
    assert wasm.headers["content-type"] == "application/wasm"
    assert wasm.headers["cache-control"] == IMMUTABLE
    # Without a digest the same file is revalidated (the self-test and the browser tests).
    plain = await client.get("/dist/worker.mjs")
    assert plain.headers["content-type"].startswith("text/javascript")
    assert plain.headers["cache-control"] == REVALIDATE
    # A replaced runtime is gone, not served under a digest it does not have.
    stale = await client.get("/dist/@0123456789abcdef/manifest.json")
    assert stale.status_code == 404
    assert "Reload the page" in stale.json()["detail"]
    for escape in ("../pyproject.toml", "%2e%2e/pyproject.toml", "pyodide/../../build.py"):
        assert (await client.get(f"/dist/@{digest}/{escape}")).status_code == 404
        assert (await client.get(f"/dist/{escape}")).status_code == 404


@needs_app
async def test_web_serves_the_app_on_its_pages_and_hashed_assets_for_good(
    client: AsyncTestClient[Litestar],
) -> None:
    for path in ("/", "/confirm", "/reset"):
        page = await client.get(path)
        assert page.status_code == 200
        assert page.headers["cache-control"] == REVALIDATE
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert "<title>SecurePACS</title>" in page.text
        assert "<script>" not in page.text  # no inline script: the CSP would refuse it
    for path, title in (("/viewer", "SecurePACS Viewer"), ("/download", "SecurePACS Download")):
        page = await client.get(path)
        assert page.status_code == 200
        assert page.headers["cache-control"] == REVALIDATE
        assert f"<title>{title}</title>" in page.text
        assert "<script>" not in page.text
    worker = await client.get("/download-sw.js")
    assert worker.headers["cache-control"] == REVALIDATE
    assert worker.headers["content-type"].startswith("text/javascript")
    # A download's own URL is answered by the service worker; the server never serves it.
    assert (await client.get(f"/download/{'ab' * 16}")).status_code == 404
    [bundle] = [p.name for p in (APP_DIR / "assets").glob("app-*.js")]
    asset = await client.get(f"/assets/{bundle}")
    assert asset.headers["cache-control"] == IMMUTABLE
    assert asset.headers["content-type"].startswith("text/javascript")
    assert (await client.get("/assets/missing.js")).status_code == 404
    assert (await client.get("/assets/../index.html")).status_code == 404

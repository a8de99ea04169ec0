"""The pages the server hands to browsers: the protocol self-test and its runtime."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from securepacs.server.web import WASM_DIR

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.testing import AsyncTestClient

pytestmark = pytest.mark.anyio


async def test_web_serves_the_selftest_page_runtime_and_vectors(
    client: AsyncTestClient[Litestar],
) -> None:
    if not (WASM_DIR / "dist" / "manifest.json").is_file():
        pytest.skip("wasm/dist is not built (`just wasm`); `just test` builds it first")
    page = await client.get("/")
    assert page.status_code == 200
    assert "SecurePACS protocol self-test" in page.text
    assert "script-src 'self' 'wasm-unsafe-eval'" in page.headers["content-security-policy"]
    manifest = (await client.get("/dist/manifest.json")).json()
    assert manifest["wheels"]
    worker = await client.get("/dist/worker.mjs")
    assert worker.headers["content-type"].startswith("text/javascript")
    cases = json.loads((await client.get("/selftest/cases.json")).content)
    assert len(cases) >= 100
    assert (await client.get("/selftest/missing.json")).status_code == 404

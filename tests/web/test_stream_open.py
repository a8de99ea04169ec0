"""The web client's own STREAM opener (client/web/src/stream-open.ts) on the shared vectors.

The worker reads a download window's groups of files with it instead of the Python core
(protocol.md §14.5), so it must accept and refuse exactly what the reference does: every
``stream.open`` and ``stream.open_instance`` vector, under Node and in Chromium.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Route, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
# wasm/serve.py is a script beside the runtime build, and pyodide_host a helper of the Pyodide
# tests (imported under that name there), not packages.
sys.path.insert(0, str(ROOT / "wasm"))
sys.path.insert(0, str(ROOT / "tests" / "pyodide"))
from pyodide_host import require_chromium, require_node_runtime  # noqa: E402
from serve import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

HERE = Path(__file__).resolve().parent
VECTORS = ROOT / "tests" / "vectors" / "stream"
TYPESCRIPT = ROOT / "client" / "web" / "node_modules" / "typescript"

pytestmark = pytest.mark.slow


def _expected_names() -> list[str]:
    names = []
    for path in sorted(VECTORS.glob("*.json")):
        vector = json.loads(path.read_text())
        if vector["op"] in ("stream.open", "stream.open_instance"):
            names.append(vector["name"])
    return names


def _check(results: list[dict[str, Any]]) -> None:
    failed = [f"{r['name']}: {r['detail']}" for r in results if not r["ok"]]
    assert not failed, "\n".join(failed)
    # A harness that skipped vectors would pass on nothing.
    assert [r["name"] for r in results] == _expected_names()
    assert len(results) >= 20


@pytest.fixture(scope="module")
def node() -> str:
    if not TYPESCRIPT.is_dir():
        pytest.fail("client/web/node_modules is missing: run `just web`")
    return require_node_runtime()


def test_vectors_under_node(node: str) -> None:
    run = subprocess.run(
        [node, str(HERE / "run_node.mjs"), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    _check(json.loads(run.stdout))


def _compiled(node: str) -> str:
    """stream-open.ts as JavaScript, compiled by the web app's TypeScript."""
    script = (
        "const ts = require(process.argv[1]);"
        "const src = require('fs').readFileSync(process.argv[2], 'utf8');"
        "process.stdout.write(ts.transpileModule(src, {compilerOptions: "
        "{module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022}}).outputText);"
    )
    source = ROOT / "client" / "web" / "src" / "stream-open.ts"
    return subprocess.run(
        [node, "-e", script, str(TYPESCRIPT), str(source)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout


def test_vectors_in_chromium(node: str) -> None:
    require_chromium()
    dist = ROOT / "wasm" / "dist"
    manifest = json.loads((dist / "manifest.json").read_text())
    files = {
        "/stream-open.js": _compiled(node).encode(),
        "/stream_vectors.mjs": (HERE / "stream_vectors.mjs").read_bytes(),
        "/libsodium/libsodium-wrappers.mjs": (dist / manifest["libsodium"]["module"]).read_bytes(),
        # The wrappers import the library beside them.
        "/libsodium/libsodium-sumo.mjs": (dist / "libsodium" / "libsodium-sumo.mjs").read_bytes(),
        "/vectors.json": json.dumps(
            [json.loads(p.read_text()) for p in sorted(VECTORS.glob("*.json"))]
        ).encode(),
        "/": b"<!doctype html><title>vectors</title>",
    }

    def serve(route: Route) -> None:
        path = "/" + route.request.url.split("/", 3)[3]
        body = files.get(path)
        if body is None:
            route.fulfill(status=404)
            return
        kind = "text/html" if path == "/" else "text/javascript"
        route.fulfill(status=200, body=body, content_type=kind)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS)
        )
        try:
            page = browser.new_page()
            # A secure context for WebCrypto, served from memory.
            page.route("http://localhost/**", serve)
            page.goto("http://localhost/")
            results = page.evaluate(
                """async () => {
                    const module = await import("/stream-open.js");
                    const { runVectors } = await import("/stream_vectors.mjs");
                    const sodium = (await import("/libsodium/libsodium-wrappers.mjs")).default;
                    await sodium.ready;
                    const vectors = await (await fetch("/vectors.json")).json();
                    return runVectors(module, sodium, vectors);
                }"""
            )
        finally:
            browser.close()
    _check(results)

"""The protocol self-test page that `just run` serves, as a person sees it in Chromium."""

from __future__ import annotations

import json
import subprocess
from typing import TYPE_CHECKING, Any

import pyodide_host
from serve import WASM_DIR, StaticSite, serve_in_thread

from securepacs.server.web import WYCHEPROOF_DIR, selftest_files

if TYPE_CHECKING:
    from pathlib import Path

DRIVER = pyodide_host.BROWSER_DIR / "selftest_drive.mjs"


def test_selftest_page_runs_every_suite_and_passes(tmp_path: Path) -> None:
    node = pyodide_host.require_chromium()
    data = {f"/selftest/{name}": body for name, body in selftest_files().items()}
    site = StaticSite({"/selftest/": WASM_DIR / "selftest", "/dist/": WASM_DIR / "dist"}, data)
    for running in serve_in_thread(site):
        shot = tmp_path / "selftest.png"
        completed = subprocess.run(
            [node, str(DRIVER), f"{running.base_url}selftest/", str(shot)],
            capture_output=True,
            timeout=300,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr.decode()
        seen: dict[str, Any] = json.loads(completed.stdout)
        assert shot.stat().st_size > 10_000
    assert seen["outcome"] == "passed", seen
    assert seen["status"] == "Every check passed in this browser."
    suites = {row[0]: row for row in seen["rows"]}
    cases = json.loads(selftest_files()["cases.json"])
    assert suites["Protocol vectors"][1:3] == [str(len(cases)), "0"]
    expected_wycheproof = len(list(WYCHEPROOF_DIR.glob("*_test.json")))
    assert sum(name.startswith("Wycheproof ") for name in suites) == expected_wycheproof
    assert all(row[2] == "0" for row in seen["rows"])
    assert not seen["failures"]

"""Studies through the CLI against a server process that is killed in the middle of an upload.

The server is SIGKILLed while parts are arriving; no partial study is visible; it restarts on the
same data; the upload (resumed by retries, or by running it again) ends with one complete study
that downloads byte-identical, as files and as a zip.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import zipfile
from typing import TYPE_CHECKING

import pydicom
import pytest
from pydicom.data import get_testdata_file

from tests.live_server import CLI, Server, live_server

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

PASSWORD = "Studies-CLI-pw-4471"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A running server."""
    yield from live_server(tmp_path)


def _cli(env: dict[str, str], *args: str, stdin: str = PASSWORD + "\n") -> str:
    done = subprocess.run(
        [CLI, *args], input=stdin, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


def _study_folder(root: Path, files: int) -> Path:
    """One study of ``files`` instances of about 3 MB each (a private blob pads them)."""
    folder = root / "study"
    folder.mkdir()
    dataset = pydicom.dcmread(str(get_testdata_file("CT_small.dcm")))
    block = dataset.private_block(0x0099, "SECUREPACS TEST", create=True)
    for index in range(files):
        dataset.SOPInstanceUID = f"{dataset.StudyInstanceUID}.{index + 1}"
        block.add_new(0x01, "OB", os.urandom(3 * 1024 * 1024))
        dataset.save_as(folder / f"{index:03d}.dcm")
    return folder


def test_cli_upload_survives_a_killed_server_and_round_trips(
    server: Server, tmp_path: Path
) -> None:
    env = {**os.environ, "SECUREPACS_CONFIG_DIR": str(tmp_path / "cli")}
    _cli(env, "--server", server.url, "register", "kim@example.org")
    outbox = sorted((tmp_path / "server" / "outbox").glob("*.eml"))
    link = re.search(r"http\S+confirm#\S+", outbox[-1].read_text())
    assert link is not None
    _cli(env, "confirm", link.group(0), stdin="")
    _cli(env, "login", "kim@example.org")
    folder = _study_folder(tmp_path, 24)
    upload = subprocess.Popen(
        [CLI, "upload", str(folder), "--jobs", "2", "--message", "second opinion"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert upload.stdin is not None
    upload.stdin.write(PASSWORD + "\n")
    upload.stdin.flush()
    parts = tmp_path / "server" / "blobs" / "blobs"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(parts.glob("*"))) < 4:
        time.sleep(0.02)
    server.kill()
    assert server.studies() == 0, "no partial study is visible"
    time.sleep(1)
    server.start()
    output, errors = upload.communicate(timeout=300)
    # Either the retries carried the upload through the restart, or it stopped with advice.
    assert upload.returncode == 0 or "resumes" in errors, errors
    again = _cli(env, "upload", str(folder))
    assert "Upload finished!" in again
    listing = _cli(env, "ls")
    assert "1 of 1 studies" in listing, listing
    assert "1 of 1 studies" in _cli(env, "ls", "--mine")
    study = listing.splitlines()[1].split()[0]
    info = _cli(env, "info", study)
    assert "Images:" in info
    assert re.search(r"Images:\s+24", info)
    assert "second opinion" in info
    assert "kim@example.org" in info
    del output
    _cli(env, "get", study, "-o", str(tmp_path / "out"))
    originals = sorted(p.read_bytes() for p in folder.iterdir())
    assert sorted(p.read_bytes() for p in (tmp_path / "out").rglob("*.dcm")) == originals
    _cli(env, "get", study, "--zip", str(tmp_path / "study.zip"))
    with zipfile.ZipFile(tmp_path / "study.zip") as archive:
        assert sorted(archive.read(n) for n in archive.namelist()) == originals
    assert "Studies: 1" in _cli(env, "stats", stdin="")
    _cli(env, "rm", study)
    assert "0 of 0 studies" in _cli(env, "ls")
    assert "Used storage: 0.0 MB" in _cli(env, "stats", stdin="")

"""The console script's guess of an upload's folder, made before argparse is imported."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from securepacs.client.launch import upload_folder

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize(
    ("argv", "found"),
    [
        (["upload", "{d}"], True),
        (["--server", "http://x", "upload", "{d}", "--jobs", "8", "--verify"], True),
        (["upload", "--message", "for Dr. Who", "{d}", "--sender-email", "a@b.c"], True),
        (["upload", "{d}/missing"], False),
        (["ls"], False),
        (["get", "{d}"], False),
        (["upload", "--", "{d}"], False),
        (["upload", "{d}", "{d}"], False),
        (["--server", "upload", "ls"], False),
    ],
)
def test_the_folder_is_read_only_from_a_plain_upload_command(
    tmp_path: Path, argv: list[str], found: bool
) -> None:
    words = [word.format(d=tmp_path) for word in argv]
    assert upload_folder(words) == (tmp_path if found else None)

"""Fixtures of the client tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file, get_testdata_files


@pytest.fixture(scope="session")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every file pydicom ships, plus a text file, a truncated DICOM and an empty file."""
    root = tmp_path_factory.mktemp("dicom")
    for index, source in enumerate(p for p in map(Path, get_testdata_files()) if p.is_file()):
        target = root / f"set{index % 3}" / source.name
        target.parent.mkdir(exist_ok=True)
        if target.exists():
            target = target.with_name(f"{index}-{source.name}")
        shutil.copyfile(source, target)
    (root / "notes.txt").write_text("not an image")
    (root / "empty.dcm").write_bytes(b"")
    ct = Path(str(get_testdata_file("CT_small.dcm")))
    (root / "truncated.dcm").write_bytes(ct.read_bytes()[:300])
    return root

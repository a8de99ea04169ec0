"""Sealing a scanned study: every instance opens byte-identical against its signed entry."""

from __future__ import annotations

import shutil
from pathlib import Path

import msgspec
import pytest
from pydicom.data import get_testdata_file

import securepacs.crypto as c
from securepacs.client.dicom import scan_folder
from securepacs.client.sealing import StudySeal, decode_metadata, encode_metadata
from tests.conftest import seeded_account

FILES = ("CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "rtplan.dcm", "SC_rgb_rle.dcm")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name in FILES:
        shutil.copyfile(str(get_testdata_file(name)), tmp_path / name)
    return tmp_path


def test_sealing_round_trips_every_instance_against_the_manifest(folder: Path) -> None:
    owner = seeded_account("owner")
    report = scan_folder(folder)
    assert report.parsed == len(FILES)
    for scan in report.studies.values():
        seal = StudySeal(owner)
        sealed = {s.instance.path: (s, b"".join(s.chunks())) for s in seal.instances(scan)}
        manifest = seal.manifest(1, [s.entry for s, _ in sealed.values()])
        opened = c.open_manifest(seal.study_key, seal.study_id, manifest, {owner.public.ed25519})
        by_file = {e.file_id: e for e in opened.entries}
        for path, (instance, stream) in sealed.items():
            assert b"DICM" not in stream  # nothing of the file shows through
            entry = by_file[instance.file_id]
            plain = b"".join(c.open_instance(seal.study_key, entry, [stream]))
            assert plain == Path(path).read_bytes()
            assert entry.instance_uid == instance.instance.sop_instance_uid
        key = c.unwrap_study_key(owner.account_key, seal.study_id, seal.wrapped_key())
        assert key == seal.study_key
        metadata = seal.open_metadata(
            seal.metadata(
                scan.attributes,
                instance_count=scan.instance_count,
                sender_email="a@b.org",
                message="hi",
            )
        )
        assert metadata.attributes == scan.attributes
        assert (metadata.sender_email, metadata.message) == ("a@b.org", "hi")
        assert metadata.instance_count == scan.instance_count


def test_sealed_entry_needs_the_stream_first(folder: Path) -> None:
    scan = next(iter(scan_folder(folder).studies.values()))
    [first, *_] = StudySeal(seeded_account("owner")).instances(scan)
    with pytest.raises(RuntimeError):
        _ = first.entry


def test_metadata_of_an_unknown_version_is_refused() -> None:
    scan = next(
        iter(scan_folder(Path(str(get_testdata_file("CT_small.dcm"))).parent).studies.values())
    )
    from securepacs.client.sealing import StudyMetadata

    newer = encode_metadata(StudyMetadata(version=2, attributes=scan.attributes))
    with pytest.raises(msgspec.ValidationError):
        decode_metadata(newer)

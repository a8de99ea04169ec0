"""Sharing through the CLI against one server process: people, pending shares, anonymous links.

ada uploads a study and shares it: View (download refused), then Download (the files come back
byte-identical), then revoked; with an email that has no account yet (pending until that person
has confirmed one, then completed by ada's next command); and through anonymous links opened
with an empty configuration (no account, no session), with and without a link password, changed
by one character, and revoked. Each person has a configuration directory of their own.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import zipfile
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import default
from pathlib import Path
from typing import TYPE_CHECKING

import pydicom
import pytest
from pydicom.data import get_testdata_file

from tests.live_server import CLI, Server, live_server

if TYPE_CHECKING:
    from collections.abc import Iterator

PASSWORD = "Shares-CLI-pw-5813"
LINK_PASSWORD = "link pass 27"


@dataclass(frozen=True, slots=True)
class Person:
    """Someone at their own computer: an email and the CLI's environment."""

    email: str
    env: dict[str, str]

    def run(self, *args: str, stdin: str = PASSWORD + "\n") -> subprocess.CompletedProcess[str]:
        """One CLI command, whatever its exit status."""
        return subprocess.run(
            [CLI, *args],
            input=stdin,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def ok(self, *args: str, stdin: str = PASSWORD + "\n") -> subprocess.CompletedProcess[str]:
        """One CLI command that must succeed."""
        done = self.run(*args, stdin=stdin)
        assert done.returncode == 0, done.stderr + done.stdout
        return done

    def fails(self, *args: str, stdin: str = PASSWORD + "\n") -> str:
        """One CLI command that must fail; its standard error."""
        done = self.run(*args, stdin=stdin)
        assert done.returncode == 1, done.stderr + done.stdout
        assert done.stderr.startswith("securepacs: "), done.stderr
        return done.stderr


@dataclass(frozen=True, slots=True)
class SharedStudy:
    """ada's uploaded study: its short id and the bytes of its files, sorted."""

    server: Server
    ada: Person
    study: str
    originals: list[bytes]


def _stranger(root: Path, name: str) -> Person:
    config = root / name
    config.mkdir()
    return Person(f"{name}@example.org", {**os.environ, "SECUREPACS_CONFIG_DIR": str(config)})


def _confirm_link(server: Server, email: str) -> str:
    for path in (server.root / "server" / "outbox").glob("*.eml"):
        message = BytesParser(policy=default).parsebytes(path.read_bytes())
        if message["To"] == email and message["Subject"] == "Confirm your SecurePACS account":
            link = re.search(r"http\S+confirm#\S+", str(message.get_content()))
            assert link is not None
            return link.group(0)
    pytest.fail(f"no confirmation mail to {email}")


def _sign_up(server: Server, person: Person) -> str:
    """Register, confirm from the outbox and sign in; the person's own key fingerprint."""
    person.ok("--server", server.url, "register", person.email)
    person.ok("confirm", _confirm_link(server, person.email), stdin="")
    return _fingerprint(person.ok("login", person.email).stdout)


def _fingerprint(output: str) -> str:
    match = re.search(r"Key fingerprint: ([0-9 ]+)", output)
    assert match, output
    return match.group(1).strip()


def _study_folder(root: Path) -> Path:
    folder = root / "study"
    folder.mkdir()
    dataset = pydicom.dcmread(str(get_testdata_file("CT_small.dcm")))
    for index in range(3):
        dataset.SOPInstanceUID = f"{dataset.StudyInstanceUID}.{index + 1}"
        dataset.save_as(folder / f"{index:03d}.dcm")
    return folder


def _files(folder: Path) -> list[bytes]:
    return sorted(path.read_bytes() for path in folder.rglob("*.dcm"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One running server for the module."""
    yield from live_server(tmp_path_factory.mktemp("shares"))


@pytest.fixture(scope="module")
def shared(server: Server) -> SharedStudy:
    """ada, signed up, with one uploaded study of three files."""
    ada = _stranger(server.root, "ada")
    _sign_up(server, ada)
    folder = _study_folder(server.root)
    assert "Upload finished!" in ada.ok("upload", str(folder)).stdout
    [row] = ada.ok("ls").stdout.splitlines()[1:2]
    assert row.split()[-1] == "owner"
    return SharedStudy(server=server, ada=ada, study=row.split()[0], originals=_files(folder))


def _row(listing: str, study: str) -> list[str]:
    return next(line.split() for line in listing.splitlines() if line.startswith(study))


def test_cli_share_view_then_download_then_revoke(shared: SharedStudy, tmp_path: Path) -> None:
    ada, study = shared.ada, shared.study
    bob = _stranger(tmp_path, "bob")
    bob_fingerprint = _sign_up(shared.server, bob)

    first = ada.ok("share", study, "--to", bob.email, "--perm", "view", "--message", "see 3")
    assert "Shared with bob@example.org (View); share id" in first.stdout
    # The first share shows the recipient's fingerprint: the one bob sees for himself.
    assert f"Their key fingerprint: {bob_fingerprint}" in first.stdout
    assert "Expires: never" in first.stdout
    view_id = re.search(r"share id ([0-9a-f]{32})", first.stdout)
    assert view_id is not None

    listing = bob.ok("ls").stdout
    assert "1 of 1 studies" in listing
    assert _row(listing, study)[-1] == "view"
    refused = bob.fails("get", study, "-o", str(tmp_path / "refused"))
    assert "does not include downloading it" in refused
    assert "Download permission" in refused
    assert not (tmp_path / "refused").exists()

    again = ada.fails("share", study, "--to", bob.email, "--perm", "download")
    assert "already shared with this person" in again
    assert "The share is revoked" in ada.ok("unshare", view_id.group(1)).stdout
    second = ada.ok("share", study, "--to", bob.email, "--perm", "download")
    assert "(Download)" in second.stdout
    assert "Their key fingerprint" not in second.stdout, "remembered from the first share"
    download_id = re.search(r"share id ([0-9a-f]{32})", second.stdout)
    assert download_id is not None

    bob.ok("get", study, "-o", str(tmp_path / "bob"))
    assert _files(tmp_path / "bob") == shared.originals
    shares = ada.ok("shares", study).stdout
    [line] = [line for line in shares.splitlines() if bob.email in line]
    assert line.startswith(download_id.group(1))
    assert "(pending)" not in line
    assert "Download" in line
    assert "by ada@example.org" in line

    assert "The share is revoked" in ada.ok("unshare", download_id.group(1)).stdout
    assert "0 of 0 studies" in bob.ok("ls").stdout


def test_cli_share_pending_until_the_recipient_registers(
    shared: SharedStudy, tmp_path: Path
) -> None:
    ada, study = shared.ada, shared.study
    carol = _stranger(tmp_path, "carol")

    pending = ada.ok("share", study, "--to", carol.email, "--perm", "view")
    assert "pending: they have no account yet" in pending.stdout
    assert "Their key fingerprint" not in pending.stdout
    carol.ok("--server", shared.server.url, "register", carol.email)
    # Registered but not confirmed: the share stays pending.
    before = ada.ok("shares", study)
    assert f"{carol.email} (pending)" in before.stdout
    assert "is complete" not in before.stderr

    carol.ok("confirm", _confirm_link(shared.server, carol.email), stdin="")
    carol_fingerprint = _fingerprint(carol.ok("login", carol.email).stdout)
    after = ada.ok("shares", study)
    assert f"{carol.email} has an account now; your share" in after.stderr
    assert "is complete" in after.stderr
    # Sealing to a new account shows its fingerprint, as a direct share does (protocol.md §5.6).
    assert f"their key fingerprint: {carol_fingerprint}" in after.stderr
    [line] = [line for line in after.stdout.splitlines() if carol.email in line]
    assert "(pending)" not in line
    # Completed once: the next command has nothing left to complete.
    assert "is complete" not in ada.ok("ls").stderr

    listing = carol.ok("ls").stdout
    assert "1 of 1 studies" in listing
    assert _row(listing, study)[-1] == "view"
    assert "CompressedSamples" in carol.ok("info", study).stdout


def test_cli_link_opens_without_an_account_until_revoked(
    shared: SharedStudy, tmp_path: Path
) -> None:
    ada, study = shared.ada, shared.study
    anyone = _stranger(tmp_path, "anyone")  # an empty configuration: no account, no session

    made = ada.ok("link", study, "--perm", "download")
    url = made.stdout.strip()
    port = shared.server.port
    assert re.fullmatch(
        rf"http://127\.0\.0\.1:{port}/s/[A-Za-z0-9_-]{{22}}#[A-Za-z0-9_-]{{46}}", url
    )
    link_id = re.search(
        r"^Link ([0-9a-f]{32}) \(Download, expires never\)", made.stderr, re.MULTILINE
    )
    assert link_id is not None, made.stderr
    assert url not in made.stderr

    # No password is asked for (nothing on stdin) and nobody signs in.
    anyone.ok("get", url, "-o", str(tmp_path / "out"), stdin="")
    assert _files(tmp_path / "out") == shared.originals
    anyone.ok("get", url, "--zip", str(tmp_path / "study.zip"), stdin="")
    with zipfile.ZipFile(tmp_path / "study.zip") as archive:
        assert sorted(archive.read(name) for name in archive.namelist()) == shared.originals
    info = anyone.ok("info", url, stdin="").stdout
    assert re.search(r"Patient name:\s+CompressedSamples", info), info
    assert re.search(r"Images:\s+3", info), info
    assert "session" not in (tmp_path / "anyone" / "session.json").read_text()

    index = url.index("#") + 10
    changed = url[:index] + ("B" if url[index] == "A" else "A") + url[index + 1 :]
    assert "incomplete or was changed" in anyone.fails("get", changed, "-o", str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()

    # A View link (the default) with a password: the password is asked for on stdin.
    protected = ada.ok("link", study, "--password", stdin=f"{PASSWORD}\n{LINK_PASSWORD}\n")
    secret_url = protected.stdout.strip()
    assert "(View, expires never)" in protected.stderr
    assert "with the password." in protected.stderr
    assert "password is wrong" in anyone.fails("info", secret_url, stdin="guess\n")
    opened = anyone.ok("info", secret_url, stdin=LINK_PASSWORD + "\n").stdout
    assert re.search(r"Your access:\s+View", opened), opened
    viewing = anyone.fails("get", secret_url, "-o", str(tmp_path / "v"), stdin=LINK_PASSWORD + "\n")
    assert "This link allows viewing the study, not downloading it" in viewing
    assert not (tmp_path / "v").exists()

    listed = ada.ok("shares", study).stdout
    [line] = [line for line in listed.splitlines() if line.startswith(link_id.group(1))]
    assert "anonymous link  Download  expires never" in line
    assert "The link is revoked" in ada.ok("unshare", link_id.group(1)).stdout
    late = anyone.fails("get", url, "-o", str(tmp_path / "late"), stdin="")
    assert "This link was revoked by the person who shared it" in late
    assert not (tmp_path / "late").exists()


def test_cli_share_refuses_a_past_expiry(shared: SharedStudy) -> None:
    ada, study = shared.ada, shared.study
    past = ada.fails(
        "share", study, "--to", "dave@example.org", "--perm", "view", "--expires", "2020-01-01"
    )
    assert "The expiration date has passed" in past


def test_cli_trust_accepts_a_changed_key_only_by_its_compared_fingerprint(
    shared: SharedStudy, tmp_path: Path
) -> None:
    """ada's device remembers another key for erin (as after erin reset her account)."""
    ada, study = shared.ada, shared.study
    erin = _stranger(tmp_path, "erin")
    erin_fingerprint = _sign_up(shared.server, erin)
    remembered = Path(ada.env["SECUREPACS_CONFIG_DIR"]) / "fingerprints.json"
    seen = json.loads(remembered.read_text()) if remembered.is_file() else {}
    old = "11111 22222 33333 44444 55555 66666 77777 88888"
    remembered.write_text(json.dumps({**seen, erin.email: old}))

    changed = ada.fails("share", study, "--to", erin.email, "--perm", "view")
    assert f"fingerprint was {old}, now {erin_fingerprint}" in changed
    assert "securepacs trust EMAIL FINGERPRINT" in changed
    wrong = ada.fails("trust", erin.email, old)
    assert "not the one you compared" in wrong
    assert json.loads(remembered.read_text())[erin.email] == old

    trusted = ada.ok("trust", erin.email, erin_fingerprint.replace(" ", ""))
    assert f"(fingerprint {erin_fingerprint}) are trusted on this device" in trusted.stdout
    assert json.loads(remembered.read_text())[erin.email] == erin_fingerprint
    shared_now = ada.ok("share", study, "--to", erin.email, "--perm", "view")
    assert "Shared with erin@example.org (View)" in shared_now.stdout

"""ZK-1 canary for sharing: study keys, link secrets and share messages stay on the clients.

Ada uploads a study with a canary patient name and description and shares it through the
client core: with Bob (View, with a message), with Carol (Edit; Carol changes the description),
with an email that has no account yet (pending, with a message), and by two anonymous links,
one of them with a password. An anonymous visitor opens both links and downloads with one; Bob
lists and opens the study; Ada revokes a link. Afterwards the database, the data folder (blob
store, mail outbox) and every log line are searched for the study key, each link's secret,
fragment, wrap key, access key and password, the account keys, and every canary text. What the
server must store, the link verifiers and the sealed grants and notes, is searched for too, so
that a search which sees nothing fails.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import pytest

from securepacs.client.editing import edit_details
from securepacs.client.library import load_rows, study_key_of
from securepacs.client.sharing import open_link_url, parse_link_url
from securepacs.crypto import PERMISSION_DOWNLOAD, PERMISSION_EDIT, PERMISSION_VIEW, link_access
from securepacs.crypto.kdf import stretch_password
from securepacs.crypto.link import link_password_params
from securepacs.crypto.note import _note_key
from tests.server.canary import data_folder, database_dump, found, logged, spellings
from tests.server.sharing import Actor, ActorTransport, upload_study

if TYPE_CHECKING:
    from pathlib import Path

    from litestar import Litestar
    from litestar.testing import AsyncTestClient

    from securepacs.crypto import AccountKeys, StudyKey
    from securepacs.server.settings import Settings

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("cheap_kdf")]

PATIENT = "Canarypatient^Wilhelmina4e9b"
DESCRIPTION = "Canary description 3a71f0"
EDITED = "Canary edit: Ödem links 5cd2e8"
MESSAGES = {
    "bob": "Canary note to Bob: Knöchel rechts 81b0c4",
    "carol": "Canary note to Carol 0f62d9",
    "pending": "Canary note before you register 9e4a17",
}
LINK_PASSWORD = "Canary-Link-Pässword-2d8c5b"
PENDING_EMAIL = "frank@example.org"


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every logger's records at DEBUG, from before the app starts."""
    caplog.set_level(logging.DEBUG)
    return caplog


def _text_needles(name: str, text: str) -> dict[str, bytes]:
    needles = spellings(name, text.encode())
    # A JSON column or log line would escape the non-ASCII characters.
    needles[f"{name}-json"] = json.dumps(text)[1:-1].encode()
    return needles


def _account_needles(name: str, keys: AccountKeys) -> dict[str, bytes]:
    needles = spellings(f"{name}:x25519-secret", keys._x25519_secret)
    needles |= spellings(f"{name}:ed25519-secret", keys._ed25519_secret[:32])
    needles |= spellings(f"{name}:account-key", keys.account_key._material)
    return needles


def _link_needles(name: str, url: str, password: str | None) -> dict[str, bytes]:
    secret = parse_link_url(url).secret
    access = link_access(secret, password)
    needles = {f"{name}:url": url.encode(), f"{name}:fragment": url.split("#", 1)[1].encode()}
    needles |= spellings(f"{name}:secret", secret._material)
    needles |= spellings(f"{name}:wrap-key", access._wrap_key)
    needles |= spellings(f"{name}:access-key", access.access_key)
    if password is not None:
        needles |= _text_needles(f"{name}:password", password)
        stretched = stretch_password(password, link_password_params(secret))
        needles |= spellings(f"{name}:stretched-password", stretched)
    return needles


def _note_needles(study_key: StudyKey, share_ids: list[str]) -> dict[str, bytes]:
    needles: dict[str, bytes] = {}
    for share_id in share_ids:
        note_key = _note_key(study_key, bytes.fromhex(share_id))
        needles |= spellings(f"note-key:{share_id}", note_key)
    return needles


def _missing(
    database: bytes,
    view_url: str,
    download_url: str,
    grants: list[bytes | None],
    notes: list[bytes | None],
) -> list[str]:
    """What the server must store but the search did not find, in any spelling."""
    view, download = parse_link_url(view_url), parse_link_url(download_url)
    must_keep = {
        "verifier:view": link_access(view.secret, None).verifier,
        "verifier:download": link_access(download.secret, LINK_PASSWORD).verifier,
    }
    assert len(grants) == 2 and len(notes) == 3
    for kind, values in (("grant", grants), ("note", notes)):
        for n, value in enumerate(values):
            assert value is not None
            must_keep[f"{kind}:{n}"] = value
    return [
        name for name, value in must_keep.items() if not found(spellings(name, value), database)
    ]


async def test_canary_shares_and_links_never_stored_mailed_or_logged(
    debug_logs: pytest.LogCaptureFixture,
    client: AsyncTestClient[Litestar],
    settings: Settings,
    tmp_path: Path,
) -> None:
    ada, bob, carol = [
        await Actor(client, name).register(settings) for name in ("ada", "bob", "carol")
    ]
    # Bob asks for share mail, so that the outbox holds one to search.
    await bob.api.set_notifications(shared_with_me=True)
    study_id = await upload_study(
        ada, tmp_path / "in", patient_name=PATIENT, description=DESCRIPTION
    )
    study_key = study_key_of(ada.keys, (await ada.api.study(study_id)).summary)

    sharing = ada.sharing()
    to_bob = await sharing.share(study_id, bob.email, PERMISSION_VIEW, message=MESSAGES["bob"])
    to_carol = await sharing.share(
        study_id, carol.email, PERMISSION_EDIT, message=MESSAGES["carol"]
    )
    pending = await sharing.share(
        study_id, PENDING_EMAIL, PERMISSION_VIEW, message=MESSAGES["pending"]
    )
    assert pending.share.pending
    edited = await edit_details(
        carol.downloader(), carol.keys, study_id, {"study_description": EDITED}
    )
    assert edited.attributes.study_description == EDITED
    viewing = await sharing.create_link(study_id, PERMISSION_VIEW)
    downloading = await sharing.create_link(study_id, PERMISSION_DOWNLOAD, password=LINK_PASSWORD)

    # An anonymous visitor opens both links and downloads with the one that allows it.
    anonymous = ActorTransport(client, None)
    seen = await open_link_url(anonymous, parse_link_url(viewing.url), None)
    study = await seen.downloader(download=False).open(study_id)
    assert study.row.attributes.study_description == EDITED
    assert study.study_key._material == study_key._material
    fetched = await open_link_url(anonymous, parse_link_url(downloading.url), LINK_PASSWORD)
    await fetched.downloader(download=True).to_folder(study_id, tmp_path / "out")
    assert len(list((tmp_path / "out").rglob("*.dcm"))) == 2

    # Bob lists what was shared with him and opens it.
    [row], failed = await load_rows(bob.api, bob.keys, "shared")
    assert failed == []
    assert (row.attributes.patient_name, row.message) == (PATIENT, MESSAGES["bob"])
    opened = await bob.downloader().open(study_id)
    assert opened.study_key._material == study_key._material
    grants = [(await actor.api.study(study_id)).summary.grant for actor in (bob, carol)]

    assert await sharing.unshare(viewing.link.link_id) == "link"
    listed = await ada.api.shares(study_id)
    assert [link.link_id for link in listed.links] == [downloading.link.link_id]
    notes = [share.note for share in listed.shares]

    needles = spellings("study-key", study_key._material)
    needles |= _text_needles("patient-name", PATIENT)
    needles |= {f"patient-name:{part}": part.encode() for part in PATIENT.split("^")}
    needles |= _text_needles("description", DESCRIPTION)
    needles |= _text_needles("edited-description", EDITED)
    for name, message in MESSAGES.items():
        needles |= _text_needles(f"message:{name}", message)
    needles |= _note_needles(study_key, [s.share.share_id for s in (to_bob, to_carol, pending)])
    needles |= _link_needles("view-link", viewing.url, None)
    needles |= _link_needles("download-link", downloading.url, LINK_PASSWORD)
    for actor in (ada, bob, carol):
        needles |= _account_needles(actor.email, actor.keys)

    logs = logged(debug_logs)
    # The access log ran for the link routes, so silence means something.
    assert b"route=/api/v1/links/" in logs
    database = database_dump(settings)
    files = data_folder(settings)
    kept = files + database
    assert bob.email.encode() in database and PENDING_EMAIL.encode() in database
    assert b"shared a study with you" in files  # the search sees the outbox
    # What the server must keep is in the database, so the search sees where secrets could be.
    assert not _missing(database, viewing.url, downloading.url, grants, notes)
    leaked = found(needles, kept, logs)
    assert not leaked, f"secrets found in storage or logs: {leaked}"

"""Sharing end to end through the client core: grants, permissions, pending shares, links.

Every share is sealed by the real client code (the code the CLI and the browser worker run) and
every check is the real server's, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid
from sqlalchemy import update

from securepacs.client.api import ApiError
from securepacs.client.dicom import scan_folder
from securepacs.client.download import IntegrityError
from securepacs.client.editing import EditProblem, edit_details
from securepacs.client.library import load_rows
from securepacs.client.sharing import (
    LinkProblem,
    ShareProblem,
    open_link_url,
    parse_link_url,
)
from securepacs.client.trust import FingerprintChanged
from securepacs.client.upload import Uploader, UploadError, UploadOptions
from securepacs.crypto import (
    PERMISSION_ADMIN,
    PERMISSION_DOWNLOAD,
    PERMISSION_EDIT,
    PERMISSION_VIEW,
)
from securepacs.server.db.engine import create_engine, session_factory
from securepacs.server.db.models import Account, Link, Share
from tests.server.conftest import outbox_links
from tests.server.sharing import Actor, ActorTransport, upload_study

if TYPE_CHECKING:
    from pathlib import Path

    from litestar import Litestar
    from litestar.testing import AsyncTestClient

    from securepacs.server.settings import Settings

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("cheap_kdf")]


async def _people(
    client: AsyncTestClient[Litestar], settings: Settings, *names: str
) -> list[Actor]:
    return [await Actor(client, name).register(settings) for name in names]


async def _sql(settings: Settings, statement: object) -> None:
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as db:
            await db.execute(statement)  # type: ignore[call-overload]
            await db.commit()
    finally:
        await engine.dispose()


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.rglob("*.dcm")}


async def test_view_then_download_then_revoke(
    client: AsyncTestClient[Litestar], settings: Settings, tmp_path: Path
) -> None:
    ada, bob = await _people(client, settings, "ada", "bob")
    study_id = await upload_study(ada, tmp_path / "in")
    made = await ada.sharing().share(study_id, bob.email, PERMISSION_VIEW, message="Left knee")
    assert made.recipient is not None and made.recipient.seen == "new"
    assert not made.share.pending

    rows, failed = await load_rows(bob.api, bob.keys, "shared")
    assert failed == []
    [row] = rows
    assert (row.study_id, row.is_owner, row.permission) == (study_id, False, PERMISSION_VIEW)
    assert (row.owner_email, row.sender_email, row.message) == (ada.email, ada.email, "Left knee")
    assert row.attributes.patient_name == "Canary^Patient"
    # Viewing: the study opens and its files verify against the owner's signed manifest.
    opened = await bob.downloader().open(study_id)
    assert len(opened.manifest.entries) == 2
    viewer = bob.downloader()
    study = await viewer.open(study_id)
    first = b"".join([p async for p in viewer.plaintext(study, study.manifest.entries[0])])
    assert first[128:132] == b"DICM"
    # Downloading needs the Download permission, which the server enforces.
    with pytest.raises(ApiError) as refused:
        await bob.downloader(download=True).to_folder(study_id, tmp_path / "no")
    assert refused.value.status == 403
    assert "Download permission" in refused.value.detail
    with pytest.raises(ApiError) as refused_batch:
        await bob.api.read_blobs(list(study.detail.blob_ids), download=True)
    assert refused_batch.value.status == 403

    await ada.sharing().update(made.share, PERMISSION_DOWNLOAD)
    await bob.downloader(download=True).to_folder(study_id, tmp_path / "out")
    assert sorted(_files(tmp_path / "out").values()) == sorted(_files(tmp_path / "in").values())

    # Revoked: the very next request is refused, and the study leaves the list.
    await ada.sharing().unshare(made.share.share_id)
    with pytest.raises(ApiError) as gone:
        await bob.api.study(study_id)
    assert gone.value.status == 404
    with pytest.raises(ApiError):
        await bob.api.read_blobs(list(study.detail.blob_ids))
    assert (await load_rows(bob.api, bob.keys, "shared"))[0] == []


async def test_edit_changes_the_details_everyone_sees(
    client: AsyncTestClient[Litestar], settings: Settings, tmp_path: Path
) -> None:
    ada, bob, carol = await _people(client, settings, "ada", "bob", "carol")
    study_id = await upload_study(ada, tmp_path / "in")
    await ada.sharing().share(study_id, bob.email, PERMISSION_VIEW)
    made = await ada.sharing().share(study_id, carol.email, PERMISSION_EDIT)
    with pytest.raises(ShareProblem, match="already shared with this person"):
        await ada.sharing().share(study_id, carol.email, PERMISSION_EDIT)
    # Changing an editor's terms keeps one endorsement for them, not one per change.
    await ada.sharing().update(made.share, PERMISSION_ADMIN)
    await ada.sharing().update(made.share, PERMISSION_EDIT)
    assert len((await ada.api.study(study_id)).endorsements) == 1
    with pytest.raises(EditProblem, match="Edit permission"):
        await edit_details(bob.downloader(), bob.keys, study_id, {"study_description": "x"})
    with pytest.raises(ApiError) as refused:
        # A viewer's client that skips its own check meets the server's.
        opened = await bob.downloader().open(study_id)
        summary = opened.detail.summary
        await bob.api.commit_study(
            study_id,
            {
                "uid_tag": __import__("base64").b64encode(summary.uid_tag).decode(),
                "wrapped_key": __import__("base64").b64encode(summary.wrapped_key).decode(),
                "metadata": __import__("base64").b64encode(summary.metadata).decode(),
                "manifest": __import__("base64").b64encode(opened.detail.manifest).decode(),
                "manifest_version": summary.manifest_version + 1,
                "blob_ids": opened.detail.blob_ids,
            },
        )
    assert refused.value.status == 403

    row = await edit_details(
        carol.downloader(), carol.keys, study_id, {"study_description": "Changed by Carol"}
    )
    assert row.attributes.study_description == "Changed by Carol"
    # The owner, a viewer and the editor all read it, signed by Carol, whom Ada gave Edit.
    for actor in (ada, bob, carol):
        opened = await actor.downloader().open(study_id)
        assert opened.row.attributes.study_description == "Changed by Carol"
        assert opened.manifest.signer == carol.keys.public.ed25519
    mine, _ = await load_rows(ada.api, ada.keys)
    assert mine[0].attributes.study_description == "Changed by Carol"
    # Carol's share ends; the manifest she signed still opens for everyone, because the grant
    # that allowed her to sign it is kept (protocol.md §15.4).
    [carol_share] = [
        s for s in (await ada.api.shares(study_id)).shares if s.recipient_email == carol.email
    ]
    await ada.sharing().unshare(carol_share.share_id)
    for actor in (ada, bob):
        opened = await actor.downloader().open(study_id)
        assert opened.row.attributes.study_description == "Changed by Carol"
    # And the owner can change it again, signing it herself.
    row = await edit_details(ada.downloader(), ada.keys, study_id, {"study_description": "Back"})
    assert (await bob.downloader().open(study_id)).manifest.signer == ada.keys.public.ed25519


async def test_admin_shares_onwards_and_a_viewer_cannot(
    client: AsyncTestClient[Litestar], settings: Settings, tmp_path: Path
) -> None:
    ada, dave, erin, bob = await _people(client, settings, "ada", "dave", "erin", "bob")
    study_id = await upload_study(ada, tmp_path / "in")
    await ada.sharing().share(study_id, dave.email, PERMISSION_ADMIN)
    await ada.sharing().share(study_id, bob.email, PERMISSION_VIEW)
    with pytest.raises(ShareProblem):
        await bob.sharing().share(study_id, erin.email, PERMISSION_VIEW)
    with pytest.raises(ApiError) as listing:
        await bob.api.shares(study_id)
    assert listing.value.status == 403

    await dave.sharing().share(study_id, erin.email, PERMISSION_DOWNLOAD, message="From Dave")
    [row], _ = await load_rows(erin.api, erin.keys, "shared")
    assert (row.owner_email, row.sender_email, row.message) == (ada.email, dave.email, "From Dave")
    # Erin trusts Dave (who shared it) and Ada (its owner): the owner's manifest opens.
    await erin.downloader(download=True).to_folder(study_id, tmp_path / "erin")
    listed = await ada.api.shares(study_id)
    assert {(s.recipient_email, s.created_by) for s in listed.shares} == {
        (dave.email, ada.email),
        (bob.email, ada.email),
        (erin.email, dave.email),
    }
    # An admin can also revoke what the owner granted.
    bob_share = next(s for s in listed.shares if s.recipient_email == bob.email)
    await dave.sharing().unshare(bob_share.share_id)
    with pytest.raises(ApiError):
        await bob.api.study(study_id)


async def test_a_share_to_a_new_email_completes_once_they_register(
    client: AsyncTestClient[Litestar], settings: Settings, tmp_path: Path
) -> None:
    [ada] = await _people(client, settings, "ada")
    study_id = await upload_study(ada, tmp_path / "in")
    frank = Actor(client, "frank")
    made = await ada.sharing().share(study_id, frank.email, PERMISSION_VIEW, message="Hi Frank")
    assert made.recipient is None and made.share.pending
    # Registered but not confirmed: someone else could have typed Frank's email.
    await frank.register(settings, confirm=False)
    assert await ada.api.completable_shares() == []
    assert (await ada.sharing().complete_pending()) == ([], [])
    await frank.confirm(settings)
    done, problems = await ada.sharing().complete_pending()
    assert [s.recipient_email for s in done] == [frank.email] and problems == []
    [row], _ = await load_rows(frank.api, frank.keys, "shared")
    assert (row.study_id, row.message) == (study_id, "Hi Frank")


async def test_expired_shares_stop_at_once(
    client: AsyncTestClient[Litestar], settings: Settings, tmp_path: Path
) -> None:
    ada, bob = await _people(client, settings, "ada", "bob")
    study_id = await upload_study(ada, tmp_path / "in")
    soon = int(time.time()) + 3600
    made = await ada.sharing().share(study_id, bob.email, PERMISSION_DOWNLOAD, expires_at=soon)
    assert made.share.expires_at == soon
    await bob.downloader().open(study_id)
    past = datetime.now(UTC) - timedelta(seconds=1)
    await _sql(settings, update(Share).values(expires_at=past))
    with pytest.raises(ApiError) as gone:
        await bob.api.study(study_id)
    assert gone.value.status == 404
    assert (await load_rows(bob.api, bob.keys, "shared"))[0] == []


async def test_share_emails_go_only_to_those_who_asked(
    client: AsyncTestClient[Litestar], settings: Settings, tmp_path: Path
) -> None:
    ada, bob, carol = await _people(client, settings, "ada", "bob", "carol")
    await bob.api.set_notifications(shared_with_me=True)
    assert (await bob.api.me()).notify_shares
    study_id = await upload_study(ada, tmp_path / "in")
    before = len(list(settings.outbox_dir.glob("*.eml")))
    await ada.sharing().share(study_id, bob.email, PERMISSION_VIEW)
    await ada.sharing().share(study_id, carol.email, PERMISSION_VIEW)
    mails = sorted(settings.outbox_dir.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
    assert len(mails) == before + 1
    text = mails[-1].read_text()
    assert bob.email in text and ada.email in text
    # No study attribute in the mail (ZK-1): the server could not know one anyway.
    assert "Canary" not in text and "description" not in text.lower()
    assert outbox_links(settings)  # the earlier confirmation mails are still there


async def _serve_keys(settings: Settings, email: str, public_keys: bytes) -> None:
    """The server hands out ``public_keys`` as the keys of ``email`` from now on."""
    await _sql(
        settings, update(Account).where(Account.email == email).values(public_keys=public_keys)
    )


async def test_a_substituted_recipient_key_is_flagged(
    client: AsyncTestClient[Litestar], settings: Settings, tmp_path: Path
) -> None:
    ada, bob, mallory = await _people(client, settings, "ada", "bob", "mallory")
    study_id = await upload_study(ada, tmp_path / "in")
    other = await upload_study(ada, tmp_path / "in2", files=1)
    made = await ada.sharing().share(study_id, bob.email, PERMISSION_VIEW)
    assert made.recipient is not None
    # The server now hands out Mallory's keys as Bob's (ZK-4).
    await _serve_keys(settings, bob.email, mallory.keys.public.encoded)
    with pytest.raises(FingerprintChanged) as flagged:
        await ada.sharing().share(other, bob.email, PERMISSION_VIEW)
    assert flagged.value.before == made.recipient.fingerprint
    assert "Compare the new fingerprint" in str(flagged.value)
    assert (await ada.api.shares(other)).shares == []
    # Accepting needs the fingerprint compared with Bob: his real one is not what is served.
    with pytest.raises(ShareProblem, match="not the one you compared"):
        await ada.sharing().accept_keys(bob.email, made.recipient.fingerprint)
    assert ada.fingerprints.recall(bob.email) == made.recipient.fingerprint
    with pytest.raises(FingerprintChanged):
        await ada.sharing().share(other, bob.email, PERMISSION_VIEW)
    with pytest.raises(ShareProblem, match="no account"):
        await ada.sharing().accept_keys("nobody@example.org", flagged.value.now)


async def test_changed_keys_are_trusted_once_compared(
    client: AsyncTestClient[Litestar], settings: Settings, tmp_path: Path
) -> None:
    """A reset account's new keys, accepted by the fingerprint read out, then shared with."""
    ada, bob, bobs_new = await _people(client, settings, "ada", "bob", "bobs-new")
    study_id = await upload_study(ada, tmp_path / "in")
    before = (await ada.sharing().share(study_id, bob.email, PERMISSION_VIEW)).recipient
    assert before is not None
    await _serve_keys(settings, bob.email, bobs_new.keys.public.encoded)
    with pytest.raises(FingerprintChanged) as flagged:
        await ada.sharing().recipient(bob.email)
    read_out = flagged.value.now.replace(" ", "  ") + " "  # as typed: spacing does not matter
    assert await ada.sharing().accept_keys(bob.email.upper(), read_out) == flagged.value.now
    assert ada.fingerprints.recall(bob.email) == flagged.value.now
    found = await ada.sharing().recipient(bob.email)
    assert found is not None and found.seen == "same"


async def test_a_grant_altered_in_the_database_is_refused(
    client: AsyncTestClient[Litestar], settings: Settings, tmp_path: Path
) -> None:
    ada, bob = await _people(client, settings, "ada", "bob")
    study_id = await upload_study(ada, tmp_path / "in")
    await ada.sharing().share(study_id, bob.email, PERMISSION_VIEW)
    [share] = (await ada.api.shares(study_id)).shares
    detail = await bob.api.study(study_id)
    grant = detail.summary.grant
    assert grant is not None
    for position in (len(grant) - 70, len(grant) - 1, 20):
        tampered = bytearray(grant)
        tampered[position] ^= 0x01
        await _sql(settings, update(Share).values(grant=bytes(tampered)))
        rows, failed = await load_rows(bob.api, bob.keys, "shared")
        assert (rows, failed) == ([], [study_id])
        with pytest.raises(IntegrityError, match="do not open with your keys"):
            await bob.downloader().open(study_id)
    assert share.permission == PERMISSION_VIEW


async def test_anonymous_links(
    client: AsyncTestClient[Litestar], settings: Settings, tmp_path: Path
) -> None:
    [ada] = await _people(client, settings, "ada")
    study_id = await upload_study(ada, tmp_path / "in")
    anonymous = ActorTransport(client, None)
    created = await ada.sharing().create_link(study_id, PERMISSION_VIEW)
    assert created.url.startswith("https://pacs.example.org/s/")
    address = parse_link_url(created.url)
    opened = await open_link_url(anonymous, address, None)
    assert (opened.permission, opened.created_by) == (PERMISSION_VIEW, ada.email)
    study = await opened.downloader(download=False).open(study_id)
    assert study.row.attributes.patient_name == "Canary^Patient"
    with pytest.raises(ApiError) as refused:
        await opened.downloader(download=True).to_folder(study_id, tmp_path / "no")
    assert refused.value.status == 403
    # No request carried the fragment or anything derived from it but the access key.
    fragment = created.url.split("#", 1)[1]
    for _, path, body, headers in anonymous.sent:
        assert fragment not in path and fragment.encode() not in body
        assert fragment not in str(headers)

    # A download link with a password: the right one opens it, a wrong one says so.
    with_password = await ada.sharing().create_link(
        study_id, PERMISSION_DOWNLOAD, password="Link-Pass-1"
    )
    address = parse_link_url(with_password.url)
    assert address.password_required
    with pytest.raises(LinkProblem, match="has a password"):
        await open_link_url(anonymous, address, None)
    with pytest.raises(LinkProblem, match="password is wrong"):
        await open_link_url(anonymous, address, "wrong")
    opened = await open_link_url(anonymous, address, "Link-Pass-1")
    await opened.downloader(download=True).to_folder(study_id, tmp_path / "out")
    assert sorted(_files(tmp_path / "out").values()) == sorted(_files(tmp_path / "in").values())

    # A modified link: each way of changing it has its message.
    url = created.url
    cut = url[:-3]
    with pytest.raises(LinkProblem, match="incomplete or was changed"):
        parse_link_url(cut)
    changed = url[: url.index("#") + 5] + ("B" if url[url.index("#") + 5] != "B" else "C")
    changed += url[url.index("#") + 6 :]
    with pytest.raises(LinkProblem, match="incomplete or was changed"):
        await open_link_url(anonymous, parse_link_url(changed), None)

    # Expired, then revoked: their own messages, and only to someone holding the key.
    past = datetime.now(UTC) - timedelta(seconds=1)
    link_id = address.link_id.hex()
    await _sql(settings, update(Link).where(Link.id != link_id).values(expires_at=past))
    with pytest.raises(LinkProblem, match="expired"):
        await open_link_url(anonymous, parse_link_url(created.url), None)
    await ada.sharing().unshare(link_id)
    with pytest.raises(LinkProblem, match="revoked"):
        await open_link_url(anonymous, address, "Link-Pass-1")
    listed = await ada.api.shares(study_id)
    assert [link.link_id for link in listed.links] == [created.link.link_id]


async def test_a_link_envelope_altered_in_the_database_is_refused(
    client: AsyncTestClient[Litestar], settings: Settings, tmp_path: Path
) -> None:
    [ada] = await _people(client, settings, "ada")
    study_id = await upload_study(ada, tmp_path / "in")
    created = await ada.sharing().create_link(study_id, PERMISSION_VIEW)
    address = parse_link_url(created.url)
    anonymous = ActorTransport(client, None)
    envelope = (await open_link_url(anonymous, address, None)).api._opened
    assert envelope is not None
    tampered = bytearray(envelope.envelope)
    tampered[30] ^= 0x40
    await _sql(settings, update(Link).values(envelope=bytes(tampered)))
    with pytest.raises(LinkProblem, match="changed on the server"):
        await open_link_url(anonymous, address, None)


async def test_failed_link_attempts_are_rate_limited(
    client: AsyncTestClient[Litestar], settings: Settings, tmp_path: Path
) -> None:
    [ada] = await _people(client, settings, "ada")
    study_id = await upload_study(ada, tmp_path / "in")
    created = await ada.sharing().create_link(study_id, PERMISSION_VIEW)
    link_id = parse_link_url(created.url).link_id.hex()
    client.cookies.clear()
    headers = {"x-securepacs-link-key": "A" * 43}
    codes = [
        (await client.post(f"/api/v1/links/{link_id}/open", json={}, headers=headers)).status_code
        for _ in range(21)
    ]
    assert codes[:20] == [404] * 20
    assert codes[20] == 429
    # Now even the right key waits: a guesser cannot tell which attempt was right.
    with pytest.raises(LinkProblem):
        await open_link_url(ActorTransport(client, None), parse_link_url(created.url), None)


async def test_links_allow_view_or_download_and_expiries_stay_in_range(
    client: AsyncTestClient[Litestar], settings: Settings, tmp_path: Path
) -> None:
    ada, bob = await _people(client, settings, "ada", "bob")
    study_id = await upload_study(ada, tmp_path / "in")
    with pytest.raises(ShareProblem, match="View or Download"):
        await ada.sharing().create_link(study_id, PERMISSION_EDIT)
    # The latest expiry a timestamp holds is fine; a later one is refused, not a server error.
    made = await ada.sharing().share(study_id, bob.email, PERMISSION_VIEW, 253_402_300_799)
    assert made.share.expires_at == 253_402_300_799
    with pytest.raises(ApiError) as refused:
        await ada.api.update_share(
            made.share.share_id, {"permission": PERMISSION_VIEW, "expires_at": 253_402_300_800}
        )
    assert refused.value.status in (400, 422)


async def test_an_editor_adds_files_and_a_viewer_cannot(
    client: AsyncTestClient[Litestar], settings: Settings, tmp_path: Path
) -> None:
    ada, bob, carol = await _people(client, settings, "ada", "bob", "carol")
    study_id = await upload_study(ada, tmp_path / "in")
    await ada.sharing().share(study_id, bob.email, PERMISSION_VIEW)
    await ada.sharing().share(study_id, carol.email, PERMISSION_EDIT)
    opened = await ada.downloader().open(study_id)
    # One more slice of the same study, which Carol has.
    more = tmp_path / "more"
    more.mkdir()
    dataset = pydicom.dcmread(str(get_testdata_file("CT_small.dcm")))
    dataset.StudyInstanceUID = opened.row.attributes.study_instance_uid
    dataset.SOPInstanceUID = generate_uid()
    dataset.save_as(more / "extra.dcm")
    other = tmp_path / "other"
    other.mkdir()
    dataset.StudyInstanceUID = generate_uid()
    dataset.save_as(other / "other.dcm")

    def uploader(actor: Actor) -> Uploader:
        return Uploader(
            actor.api, actor.keys, scanner=scan_folder, journal_dir=tmp_path / actor.email
        )

    with pytest.raises(UploadError, match="Edit permission"):
        await uploader(bob).upload_folder(more, UploadOptions(into=study_id))
    with pytest.raises(UploadError, match="another study"):
        await uploader(carol).upload_folder(other, UploadOptions(into=study_id))
    result = await uploader(carol).upload_folder(more, UploadOptions(into=study_id))
    assert [(s.study_id, s.uploaded, s.appended) for s in result.studies] == [(study_id, 1, True)]
    # Everyone reads three files now; the owner's key wrap, tag, sender and message stayed.
    for actor in (ada, bob, carol):
        now = await actor.downloader().open(study_id)
        assert len(now.manifest.entries) == 3
        assert now.manifest.signer == carol.keys.public.ed25519
    after = await ada.api.study(study_id)
    assert (after.summary.uid_tag, after.summary.wrapped_key) == (
        opened.detail.summary.uid_tag,
        opened.detail.summary.wrapped_key,
    )
    mine, _ = await load_rows(ada.api, ada.keys)
    assert mine[0].sender_email == opened.row.sender_email
    # The new file counts against Carol's storage, not Ada's.
    assert (await carol.api.stats()).used_bytes > 0
    # And the owner can still add files after Carol did.
    dataset.StudyInstanceUID = opened.row.attributes.study_instance_uid
    dataset.SOPInstanceUID = generate_uid()
    again = tmp_path / "again"
    again.mkdir()
    dataset.save_as(again / "again.dcm")
    await uploader(ada).upload_folder(again, UploadOptions())
    assert len((await bob.downloader().open(study_id)).manifest.entries) == 4

"""The Studies tab at 10,000 rows: it opens, scrolls, sorts and searches, and a long load can be
cancelled. The rows are made by the client core (sealed as the uploader seals them) so that the
browser has a realistic worklist to open without uploading 10,000 files first."""

from __future__ import annotations

import asyncio
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Final

import pytest
from playwright.sync_api import expect

from securepacs.client.accounts import AccountFlows, token_from_link
from securepacs.client.api import b64
from securepacs.client.httpx_transport import HttpxTransport
from securepacs.client.scanned import StudyAttributes
from securepacs.client.sealing import StudySeal
from securepacs.crypto import ManifestEntry, StreamSealer, ciphertext_hash, study_uid_tag
from tests.browser import app

if TYPE_CHECKING:
    from securepacs.crypto import AccountKeys
    from tests.browser.conftest import Tab
    from tests.conftest import SmtpInbox
    from tests.live_server import Server

pytestmark = pytest.mark.slow

ROWS: Final = 10_000
EMAIL: Final = "big.worklist@example.org"
MODALITIES: Final = ("CT", "MR", "US", "DX", "CR")


def attributes(index: int) -> StudyAttributes:
    """Study ``index`` of the seeded worklist: every value derived from the index."""
    return StudyAttributes(
        study_instance_uid=f"1.2.826.0.1.3680043.10.99.{index}",
        patient_name=f"Patient{index:05d}^Test",
        patient_id=f"PID{index:05d}",
        patient_sex="FM"[index % 2],
        accession_number=f"ACC{index:05d}",
        referring_physician=f"Doctor{index % 50}^Ref",
        study_date=f"20{10 + index % 15:02d}{1 + index % 12:02d}{1 + index % 28:02d}",
        study_description=f"Seeded study {index}",
        modalities=(MODALITIES[index % len(MODALITIES)],),
    )


def sealed(keys: AccountKeys, index: int) -> tuple[str, bytes, str, dict[str, object]]:
    """One study with one tiny instance, as the uploader would send it."""
    seal = StudySeal(keys)
    sealer = StreamSealer.new(seal.study_key)
    payload = b"".join(sealer.seal([b"tiny instance %d" % index]))
    study = attributes(index)
    entry = ManifestEntry(
        file_id=sealer.file_id,
        plaintext_size=len(b"tiny instance %d" % index),
        ciphertext_size=len(payload),
        ciphertext_hash=ciphertext_hash(payload),
        series_uid=f"{study.study_instance_uid}.1",
        instance_uid=f"{study.study_instance_uid}.1.1",
    )
    body: dict[str, object] = {
        "uid_tag": b64(study_uid_tag(keys.account_key, study.study_instance_uid)),
        "wrapped_key": b64(seal.wrapped_key()),
        "metadata": b64(seal.metadata(study, instance_count=1)),
        "manifest": b64(seal.manifest(1, [entry])),
        "manifest_version": 1,
        "blob_ids": [sealer.file_id.hex()],
    }
    return sealer.file_id.hex(), payload, seal.study_id.hex(), body


async def seed(site: Server, mail: SmtpInbox) -> None:
    """Register ``EMAIL`` with a recovery key and commit ``ROWS`` studies to it."""
    async with HttpxTransport(site.url) as transport:
        flows = AccountFlows(transport)
        await flows.register(EMAIL, app.PASSWORD)
        await flows.confirm(token_from_link(mail.last_link()))
        unlocked = await flows.login(EMAIL, app.PASSWORD)
        await flows.create_recovery_key(unlocked, replace=False)
        for start in range(0, ROWS, 500):
            batch = [sealed(unlocked.keys, i) for i in range(start, min(start + 500, ROWS))]
            await flows.api.put_blobs([(b, ciphertext_hash(p), p) for b, p, _, _ in batch])
            for part in range(0, len(batch), 100):  # the server takes 100 commits a request
                outcomes = await flows.api.commit_studies(
                    [(study_id, body) for _, _, study_id, body in batch[part : part + 100]]
                )
                assert all(outcome.code is None for outcome in outcomes)


@pytest.fixture(scope="module")
def big_account(site: Server, mail: SmtpInbox) -> str:
    """An account with ``ROWS`` studies."""
    # On a thread of its own: Playwright's sync API keeps an event loop running on this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, seed(site, mail)).result()
    return EMAIL


def test_worklist_of_ten_thousand_studies_opens_scrolls_sorts_and_searches(
    tab: Tab, site: Server, big_account: str
) -> None:
    page = tab.page
    app.open_app(page, site)
    started = time.monotonic()
    app.log_in(page, big_account)
    status = page.get_by_test_id("search-status")
    expect(status).to_have_text(f"{ROWS} of {ROWS} studies", timeout=app.SLOW)
    opened = time.monotonic() - started
    # Usable: well under the test's patience on a loaded 2-core machine (about 10 s here).
    assert opened < 60, opened

    # Only the rows in view are in the page, whatever the length of the list.
    body = page.get_by_test_id("study-grid-body")
    assert 10 <= page.get_by_test_id("study-row").count() <= 80
    page.get_by_role("columnheader", name="#").click()
    body.evaluate("element => { element.scrollTop = element.scrollHeight; }")
    expect(page.get_by_test_id("study-row").last).to_be_visible()
    numbers = [int(r["#"]) for r in app.grid_rows(page)]
    assert max(numbers) == ROWS
    assert page.get_by_test_id("study-row").count() <= 80

    # Sort by Patient ID, ascending then descending.
    header = page.get_by_role("columnheader", name="Patient ID")
    header.click()
    body.evaluate("element => { element.scrollTop = 0; }")
    expect(page.get_by_test_id("study-row").first).to_contain_text("PID00000")
    expect(header).to_have_attribute("aria-sort", "ascending")
    header.click()
    expect(page.get_by_test_id("study-row").first).to_contain_text(f"PID{ROWS - 1:05d}")

    # Searches over the opened worklist answer without fetching it again.
    fetched = tab.recorder.mark()
    rows = app.search(page, **{"Patient ID": "PID04242"})
    assert [r["Patient ID"] for r in rows] == ["PID04242"]
    app.search(page, Modality="MR", Sex="F")
    expected = sum(1 for i in range(ROWS) if i % 5 == 1 and i % 2 == 0)
    expect(status).to_have_text(f"{expected} of {ROWS} studies")
    assert not [r for r in tab.recorder.requests[fetched:] if "/api/v1/studies" in r.url]


def test_a_long_worklist_load_can_be_cancelled(tab: Tab, site: Server, big_account: str) -> None:
    page = tab.page
    app.open_app(page, site)
    app.log_in(page, big_account)
    status = page.get_by_test_id("search-status")
    expect(status).to_have_text(f"{ROWS} of {ROWS} studies", timeout=app.SLOW)

    page.get_by_role("button", name="Refresh").click()
    cancel = page.get_by_role("button", name="Cancel")
    expect(cancel).to_be_visible()
    expect(status).to_have_text(re.compile("Decrypting the worklist"))
    cancel.click()
    expect(status).to_have_text("Cancelled. Narrow the search and run it again.")
    expect(cancel).to_be_hidden()
    # The worklist opened before stays searchable.
    app.search(page, **{"Patient ID": "PID00007"})
    expect(status).to_have_text(f"1 of {ROWS} studies")

"""A person's first session in the browser (user manual, Quick Start to Upload Studies), ZK-1.

Register, confirm through the real SMTP server, log in, create and download the recovery key,
upload a folder of pydicom's test files with a canary study and a text file, find the studies by
each filter, open Properties, delete a study, log out. Everything the page sent on the way is
recorded: no body may carry a DICOM preamble, a canary value or the password, and no request
may leave the app's origin.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect

from securepacs.client.accounts import AccountFlows
from securepacs.client.api import ApiClient
from securepacs.client.dicom import scan_folder
from securepacs.client.download import Downloader
from securepacs.client.httpx_transport import HttpxTransport
from securepacs.client.library import load_rows
from securepacs.client.search import StudyFilter, search
from securepacs.crypto.recovery import parse_key_file
from tests.browser import app
from tests.browser.data import CANARY, CANARY_UID

if TYPE_CHECKING:
    from tests.browser.conftest import Tab
    from tests.conftest import SmtpInbox
    from tests.live_server import Server

pytestmark = pytest.mark.slow

PREAMBLE = bytes(128) + b"DICM"


def _count(status: str) -> int:
    match = re.match(r"(\d+) of (\d+) studies", status)
    return int(match.group(1)) if match else 0


def _uids(page_rows: list[dict[str, str]]) -> set[str]:
    return {row["Study Instance UID"] for row in page_rows}


async def _download_all(site: Server, email: str, out: Path) -> set[str]:
    """Sign in with the client core over httpx, download every study; SHA-256 of each file."""
    async with HttpxTransport(site.url) as transport:
        unlocked = await AccountFlows(transport).login(email, app.PASSWORD)
        api = ApiClient(transport)
        rows, failed = await load_rows(api, unlocked.keys)
        assert failed == []
        downloader = Downloader(api, unlocked.keys)
        for row in rows:
            await downloader.to_folder(row.study_id, out / row.study_id)
    return {hashlib.sha256(p.read_bytes()).hexdigest() for p in out.rglob("*.dcm")}


def test_first_session_register_upload_search_and_log_out(
    tab: Tab, site: Server, mail: SmtpInbox, dicom_folder: Path, tmp_path: Path
) -> None:
    page, email = tab.page, "first.session@example.org"
    key_file = app.sign_up(page, site, mail, email, tab.downloads)
    assert key_file.name == "securepacs-recovery-key.txt"
    parse_key_file(key_file.read_bytes())  # a key file the CLI and the recovery dialog read back
    expect(page.get_by_test_id("search-status")).to_have_text(
        "No studies yet. Use Upload Study to add one."
    )

    report = scan_folder(dicom_folder)
    start = tab.recorder.mark()
    counts = app.upload(page, dicom_folder, sender="sender@example.org", message="For review")
    unsupported = len(report.unsupported) + len(report.broken)
    assert counts["found"] == f"Found {report.found} files ({unsupported} unsupported, skipped)"
    assert counts["Unsupported files"] == str(unsupported)
    assert counts["Parsed files"] == str(report.parsed)
    assert counts["Progress"] == "100 %"
    uploaded, total = re.fullmatch(r"(\d+) of (\d+) files", counts["Uploaded"]).groups()  # type: ignore[union-attr]
    assert uploaded == total != "0"

    studies = [s.attributes for s in report.studies.values()]
    status = app.wait_for_studies(page)
    assert status == f"{len(studies)} of {len(studies)} studies"

    today = datetime.now(UTC).astimezone().date()  # the browser's local date, same machine
    cases: list[tuple[dict[str, str], StudyFilter]] = [
        ({"Name": "zkcan"}, StudyFilter(patient_name="zkcan")),
        ({"Patient ID": CANARY["PatientID"]}, StudyFilter(patient_id=CANARY["PatientID"])),
        ({"Sex": "F"}, StudyFilter(patient_sex="F")),
        (
            {"Accession number": CANARY["AccessionNumber"]},
            StudyFilter(accession_number=CANARY["AccessionNumber"]),
        ),
        ({"Referring physician": "sentinel"}, StudyFilter(referring_physician="sentinel")),
        ({"Modality": "CT"}, StudyFilter(modality="CT")),
        ({"Study date": "this_year"}, StudyFilter(date_preset="this_year")),
        ({"Study date": "last_year"}, StudyFilter(date_preset="last_year")),
        (
            {
                "Study date": "custom",
                "Study date from": "2024-06-01",
                "Study date to": "2024-06-30",
            },
            StudyFilter(date_from=date(2024, 6, 1), date_to=date(2024, 6, 30)),
        ),
    ]
    for filters, expected_filter in cases:
        expected = search(studies, expected_filter, today)
        rows = app.search(page, **filters)
        status = page.get_by_test_id("search-status").inner_text()
        if not expected:
            assert status.startswith("Search returns no studies"), (filters, status)
            continue
        assert _count(status) == len(expected), (filters, status)
        if len(expected) <= 10:
            assert _uids(rows) == {a.study_instance_uid for a in expected}, filters
    canary_rows = app.search(page, Name="zkcanary", Sex="F")
    assert _uids(canary_rows) == {CANARY_UID}
    [row] = canary_rows
    assert row["Patient name"] == "Zkcanary, Browser"
    assert row["Study date"] == "2024-06-15"
    assert row["Owner"] == email
    assert row["Images"] == "1"

    # Properties, from the row's action menu; DICOM nodes wait for their issue, and adding files
    # is for a study shared with you (your own get Upload Study).
    page.get_by_test_id("row-actions").first.click()
    menu = page.get_by_test_id("row-menu")
    enabled = ("Open in new Window", "Open in advanced Viewer", "Manage Shares", "Download as zip")
    for now in enabled:
        expect(menu.get_by_role("menuitem", name=now)).to_be_enabled()
    for later in ("Add files", "Send To Dicom"):
        expect(menu.get_by_role("menuitem", name=later)).to_be_disabled()
    menu.get_by_role("menuitem", name="Properties").click()
    properties = page.get_by_test_id("properties-dialog")
    expect(properties).to_contain_text("sender@example.org")
    expect(properties).to_contain_text("For review")
    # The owner may correct the description, so it shows in its field.
    expect(properties.get_by_label("Description")).to_have_value(CANARY["StudyDescription"])
    properties.get_by_role("button", name="Close").click()

    # ZK-1: nothing the page sent during the upload and the searches carries a DICOM file, a
    # canary value or the password; the uploads did go out (the check is not vacuous).
    sent = tab.recorder.requests[start:]
    blob_bytes = sum(len(r.body) for r in sent if "/api/v1/blobs" in r.url)
    assert blob_bytes > sum(p.stat().st_size for p in dicom_folder.rglob("*.dcm")) // 2
    secrets = [PREAMBLE, app.PASSWORD.encode()]
    secrets += [value.encode() for value in CANARY.values() if len(value) > 2]
    secrets += [CANARY_UID.encode(), b"Zkcanary"]
    for request in tab.recorder.requests:
        for secret in secrets:
            assert secret not in request.body, (request.method, request.url, secret)
            assert secret.decode() not in request.url
        assert request.url.startswith(site.url + "/"), request.url
    # Nor does anything the server keeps: its database, its blob store and its log.
    stored = [p for p in site.root.rglob("*") if p.is_file()]
    assert any(p.name == "securepacs.db" for p in stored)
    for path in stored:
        data = path.read_bytes()
        for secret in secrets:
            assert secret not in data, (path.name, secret)

    # What the browser sealed, the CLI's core downloads and opens: every file comes back
    # byte for byte, verified against the manifest the worker signed.
    with ThreadPoolExecutor(1) as pool:
        downloaded = pool.submit(asyncio.run, _download_all(site, email, tmp_path / "out"))
        assert downloaded.result() == {
            hashlib.sha256(Path(i.path).read_bytes()).hexdigest()
            for study in report.studies.values()
            for members in study.series.values()
            for i in members
        }

    # Delete the canary study from the row menu.
    page.get_by_test_id("row-actions").first.click()
    menu.get_by_role("menuitem", name="Delete").click()
    page.get_by_role("dialog", name="Delete study").get_by_role("button", name="Delete").click()
    expect(page.get_by_test_id("search-status")).to_have_text(
        "Search returns no studies. Check the filters, the date range and the spelling, or Reset."
    )
    assert site.studies() == len(studies) - 1

    app.log_out(page)

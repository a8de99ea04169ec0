"""The browser worker's session (client/worker_session.py) against a real server and mail server.

Requests go in as the page sends them, ``{"method": ..., "args": {...}}``, through ``answer`` (and
``call`` for the JSON string), over HttpxTransport to a ``securepacs serve`` process that mails a
real SMTP server; confirmation and reset tokens come from the received mails. One server and one
uploaded worklist (the ``library`` folder) serve the whole module. Each account flow has its own
address, so the server's per-address limits (10 sign-ins in 5 minutes, 3 mails an hour) hold;
Argon2id runs at its real cost because the server refuses cheaper parameters.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections import Counter
from datetime import date
from typing import TYPE_CHECKING, Any

import pyotp
import pytest
from aiosmtpd.controller import Controller
from pydicom.data import get_testdata_file

from securepacs.client import worker_session
from securepacs.client.dicom import scan_folder
from securepacs.client.httpx_transport import HttpxTransport
from securepacs.client.transport import TransportFailure
from securepacs.client.worker_session import Session, answer, call, configure
from securepacs.crypto.recovery import (
    format_key_uid,
    new_recovery_key,
    parse_key_file,
    parse_recovery_text,
    recovery_key_file,
    recovery_text,
)
from tests.conftest import SmtpInbox, free_port
from tests.live_server import Server

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator, Mapping
    from pathlib import Path

    from securepacs.client.scanned import ScanReport, StudyAttributes
    from securepacs.client.transport import TransportResponse

pytestmark = pytest.mark.anyio

PASSWORD = "worker session pw 1"
NEW_PASSWORD = "worker session pw 2"
SENDER = "referrer@example.org"
MESSAGE = "Second opinion on the CT, please."
CONFIRM = "Confirm your SecurePACS account"
RESET = "Reset your SecurePACS password"
SIGN_IN_AGAIN = "Sign in again"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"  # the client's task groups are asyncio's; one loop for the module


class Stack:
    """The running server's URL and the inbox its mail reaches."""

    def __init__(self, url: str, inbox: SmtpInbox) -> None:
        self.url = url
        self.inbox = inbox

    def token(self, to: str, subject: str) -> str:
        """The token of the newest mail's link: the part after '#', as the page reads it."""
        newest = self.inbox.messages[-1]
        assert (newest["To"], newest["Subject"]) == (to, subject)
        return self.inbox.last_link().split("#", 1)[1]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """`securepacs serve` (SQLite, local blobs) mailing to an aiosmtpd server, for the module."""
    inbox = SmtpInbox()
    inbox.port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    server = Server(tmp_path_factory.mktemp("worker-session"))
    server.env["SECUREPACS_SMTP_URL"] = f"smtp://127.0.0.1:{inbox.port}"
    try:
        server.start()
        yield Stack(server.url, inbox)
    finally:
        server.stop()
        controller.stop()


class Events:
    """The ``emit`` callable: keeps every event the session sends to the page."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, event: str, data: dict[str, Any]) -> None:
        self.seen.append((event, data))

    def of(self, event: str) -> list[dict[str, Any]]:
        return [data for name, data in self.seen if name == event]


class Offline:
    """A transport that must stay unused: it records each request and answers none."""

    def __init__(self) -> None:
        self.requests: list[str] = []

    async def request(self, method: str, path: str, body: Any = None) -> TransportResponse:
        self.requests.append(f"{method} {path}")
        raise TransportFailure("offline")

    async def send(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> TransportResponse:
        self.requests.append(f"{method} {path}")
        raise TransportFailure("offline")


async def _ask(session: Session, method: str, **args: Any) -> dict[str, Any]:
    return await answer(session, {"method": method, "args": args})


async def _ok(session: Session, method: str, **args: Any) -> Any:
    answered = await _ask(session, method, **args)
    assert answered["ok"] is True, answered
    assert set(answered) == {"ok", "value"}
    return answered["value"]


async def _refused(session: Session, method: str, **args: Any) -> dict[str, Any]:
    answered = await _ask(session, method, **args)
    assert answered["ok"] is False, answered
    error: dict[str, Any] = answered["error"]
    assert set(error) == {"kind", "code", "status", "message"}
    assert error["message"]
    return error


async def _new_account(
    stack: Stack, transport: HttpxTransport, email: str, events: Events | None = None
) -> Session:
    """Register, confirm from the mailed link and sign in, all through the session."""
    session = Session(transport, events if events is not None else Events())
    assert await _ok(session, "register", email=email, password=PASSWORD) is None
    assert await _ok(session, "confirm", token=stack.token(email, CONFIRM)) is None
    signed_in = await _ok(session, "login", email=email, password=PASSWORD)
    assert signed_in == {"state": "unlocked", "email": email}
    return session


def _two_studies(root: Path) -> Path:
    """A folder with two single-image studies (CT and MR) from pydicom's test files."""
    folder = root / "two-studies"
    folder.mkdir()
    for name in ("CT_small.dcm", "MR_small.dcm"):
        shutil.copyfile(str(get_testdata_file(name)), folder / name)
    return folder


async def _upload(session: Session, folder: Path) -> dict[str, Any]:
    await _ok(session, "scan", folder=str(folder))
    uploaded: dict[str, Any] = await _ok(session, "upload", sender_email=SENDER, message=MESSAGE)
    return uploaded


# Refusals before any request ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["no_such_method", "_keys", "__init__", "_check", "flows", "emit"])
async def test_worker_session_refuses_unknown_and_private_methods(name: str) -> None:
    offline = Offline()
    error = await _refused(Session(offline, Events()), name)
    assert error["kind"] == "input"
    assert name in error["message"]
    assert offline.requests == []


async def test_worker_session_refuses_a_request_without_a_method_name() -> None:
    offline = Offline()
    session = Session(offline, Events())
    requests: list[dict[str, Any]] = [{}, {"method": 7}, {"method": None, "args": {}}]
    for request in requests:
        answered = await answer(session, request)
        assert answered["ok"] is False
        assert answered["error"]["kind"] == "input"
    assert offline.requests == []


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("account", {}),
        ("create_recovery_key", {}),
        ("invalidate_recovery_keys", {}),
        ("change_password", {"old": PASSWORD, "new": NEW_PASSWORD}),
        ("load_studies", {"source": "personal"}),
        ("scan", {"folder": "/nowhere"}),
        ("upload", {"sender_email": SENDER}),
    ],
)
async def test_worker_session_methods_needing_keys_ask_to_sign_in_again(
    method: str, args: dict[str, Any]
) -> None:
    offline = Offline()
    error = await _refused(Session(offline, Events()), method, **args)
    assert error["kind"] == "input"
    assert SIGN_IN_AGAIN in error["message"]
    assert offline.requests == [], "refused before the server is asked"


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("register", {"email": "short@example.org", "password": "123456789"}),
        ("reset_password", {"token": "abc", "password": "short"}),
        ("change_password", {"old": PASSWORD, "new": "too short"}),
    ],
)
async def test_worker_session_refuses_passwords_under_10_characters_before_any_request(
    method: str, args: dict[str, Any]
) -> None:
    offline = Offline()
    error = await _refused(Session(offline, Events()), method, **args)
    assert error == {
        "kind": "input",
        "code": "",
        "status": 0,
        "message": error["message"],
    }
    assert "10 characters" in error["message"]
    assert offline.requests == []


@pytest.mark.parametrize(
    ("method", "args", "says"),
    [
        ("search", {"filters": {"date_preset": "fortnight"}}, "search field is not valid"),
        ("search", {"filters": {"date_from": "28/11/2026"}}, "search field is not valid"),
        ("search", {"filters": {}, "today": "yesterday"}, "Check what you entered"),
        ("search", {"filters": {}, "unknown": 1}, "Check what you entered"),
        ("recover", {"key_text": "AAAA"}, "Nothing to recover"),
        ("login", {"email": "x@example.org"}, "Check what you entered"),
    ],
)
async def test_worker_session_refuses_invalid_arguments_as_input(
    method: str, args: dict[str, Any], says: str
) -> None:
    offline = Offline()
    error = await _refused(Session(offline, Events()), method, **args)
    assert error["kind"] == "input"
    assert says in error["message"]
    assert offline.requests == []


async def test_worker_session_without_a_server_answers_network() -> None:
    error = await _refused(Session(Offline(), Events()), "status")
    assert error["kind"] == "network"


# Sign-in --------------------------------------------------------------------------------------


async def test_worker_session_register_confirm_and_login(stack: Stack) -> None:
    email = "lee@example.org"
    async with HttpxTransport(stack.url) as transport:
        session = Session(transport, Events())
        assert await _ok(session, "register", email=f" {email} ", password=PASSWORD) is None
        token = stack.token(email, CONFIRM)

        early = await _refused(session, "login", email=email, password=PASSWORD)
        assert early["kind"] == "api"
        assert (early["code"], early["status"]) == ("email_not_confirmed", 403)

        assert await _ok(session, "confirm", token=token) is None
        wrong = await _refused(session, "login", email=email, password="not the password")
        assert wrong["kind"] == "api"
        assert (wrong["code"], wrong["status"]) == ("invalid_credentials", 401)
        assert await _ok(session, "status") == {"state": "signed_out"}

        signed_in = await _ok(session, "login", email=email, password=PASSWORD)
        assert signed_in == {"state": "unlocked", "email": email}
        assert (await _ok(session, "account"))["email"] == email


async def test_worker_session_status_follows_sign_in_reload_and_unlock(stack: Stack) -> None:
    email = "sam@example.org"
    async with HttpxTransport(stack.url) as transport:
        assert await _ok(Session(transport, Events()), "status") == {"state": "signed_out"}
        session = await _new_account(stack, transport, email)
        assert await _ok(session, "status") == {"state": "unlocked", "email": email}

        # A reload: a new worker on the same cookie jar has the session but not the keys.
        reloaded = Session(transport, Events())
        locked = {"state": "locked", "email": email, "needs_recovery": False}
        assert await _ok(reloaded, "status") == locked
        assert SIGN_IN_AGAIN in (await _refused(reloaded, "account"))["message"]
        wrong = await _refused(reloaded, "unlock", password="not the password")
        assert wrong["kind"] == "crypto"
        assert await _ok(reloaded, "status") == locked

        assert await _ok(reloaded, "unlock", password=PASSWORD) == {
            "state": "unlocked",
            "email": email,
        }
        assert await _ok(reloaded, "status") == {"state": "unlocked", "email": email}
        assert (await _ok(reloaded, "account"))["email"] == email

        assert await _ok(reloaded, "logout") is None
        assert await _ok(reloaded, "status") == {"state": "signed_out"}
        assert await _ok(session, "status") == {"state": "signed_out"}, "one cookie, one session"
        assert SIGN_IN_AGAIN in (await _refused(reloaded, "account"))["message"]


async def test_worker_session_two_factor_sign_in(stack: Stack) -> None:
    email = "tess@example.org"
    async with HttpxTransport(stack.url) as transport:
        session = await _new_account(stack, transport, email)
        started = await _ok(session, "start_two_factor")
        assert set(started) == {"secret", "otpauth_uri"}
        assert started["otpauth_uri"].startswith("otpauth://totp/")
        totp = pyotp.TOTP(started["secret"])
        codes = await _ok(session, "confirm_two_factor", code=f" {totp.now()} ")
        assert len(codes) == 10
        assert len(set(codes)) == 10
        assert (await _ok(session, "account"))["two_factor_enabled"] is True
        await _ok(session, "logout")

        asked = await _ok(session, "login", email=email, password=PASSWORD)
        assert asked == {"state": "two_factor"}
        assert await _ok(session, "status") == {"state": "signed_out"}
        now = int(time.time())
        valid = {totp.at(now + seconds) for seconds in (-30, 0, 30)}
        wrong_code = next(c for c in ("000000", "111111", "222222") if c not in valid)
        wrong = await _refused(
            session, "login", email=email, password=PASSWORD, totp_code=wrong_code
        )
        assert (wrong["kind"], wrong["code"]) == ("api", "two_factor_invalid")

        # The confirming code's time step is used up; the next step's code is accepted.
        next_code = totp.at(now + 30)
        signed_in = await _ok(session, "login", email=email, password=PASSWORD, totp_code=next_code)
        assert signed_in == {"state": "unlocked", "email": email}
        await _ok(session, "logout")

        by_code = await _ok(
            session, "login", email=email, password=PASSWORD, recovery_code=codes[0]
        )
        assert by_code == {"state": "unlocked", "email": email}
        await _ok(session, "logout")
        reused = await _refused(
            session, "login", email=email, password=PASSWORD, recovery_code=codes[0]
        )
        assert (reused["kind"], reused["code"]) == ("api", "two_factor_invalid")


# Password reset and recovery ------------------------------------------------------------------


def _wrong(mode: str) -> dict[str, str]:
    other = new_recovery_key()
    return {
        "key_file": {"key_file": recovery_key_file(other).decode("utf-8")},
        "key_text": {"key_text": recovery_text(other)},
        "old_password": {"old_password": "not the last password"},
    }[mode]


@pytest.mark.parametrize("mode", ["key_file", "key_text", "old_password"])
async def test_worker_session_recovers_the_studies_after_a_password_reset(
    stack: Stack, tmp_path: Path, mode: str
) -> None:
    email = f"rita-{mode.replace('_', '-')}@example.org"
    async with HttpxTransport(stack.url) as transport:
        session = await _new_account(stack, transport, email)
        assert (await _upload(session, _two_studies(tmp_path)))["studies"] == 2
        before = await _ok(session, "load_studies", source="personal")
        assert before == {"total": 2, "failed": 0}
        key = await _ok(session, "create_recovery_key")
        await _ok(session, "logout")

        assert await _ok(session, "forgot_password", email=email) is None
        token = stack.token(email, RESET)
        short = await _refused(session, "reset_password", token=token, password="short")
        assert short["kind"] == "input"
        assert await _ok(session, "reset_password", token=token, password=NEW_PASSWORD) is None

        needed = await _ok(session, "login", email=email, password=NEW_PASSWORD)
        assert needed == {"state": "recovery_needed", "email": email}
        assert SIGN_IN_AGAIN in (await _refused(session, "load_studies"))["message"]
        assert (await _refused(session, "recover"))["kind"] == "input"
        wrong = await _refused(session, "recover", **_wrong(mode))
        assert wrong["kind"] == "crypto"
        assert SIGN_IN_AGAIN in (await _refused(session, "account"))["message"]

        right = {
            "key_file": {"key_file": key["file"]},
            "key_text": {"key_text": key["text"]},
            "old_password": {"old_password": PASSWORD},
        }[mode]
        recovered = await _ok(session, "recover", **right)
        assert recovered == {"state": "unlocked", "email": email}
        assert await _ok(session, "load_studies", source="personal") == before
        assert await _ok(session, "status") == {"state": "unlocked", "email": email}

        # The keys are wrapped under the new password now: a plain sign-in opens them.
        await _ok(session, "logout")
        again = await _ok(session, "login", email=email, password=NEW_PASSWORD)
        assert again == {"state": "unlocked", "email": email}
        assert await _ok(session, "load_studies", source="personal") == before


# The uploaded worklist ------------------------------------------------------------------------


class Worklist:
    """An account that scanned and uploaded the ``library`` folder through its session."""

    def __init__(
        self,
        session: Session,
        events: Events,
        email: str,
        report: ScanReport,
        scanned: dict[str, Any],
        uploaded: dict[str, Any],
    ) -> None:
        self.session = session
        self.events = events
        self.email = email
        self.report = report
        self.scanned = scanned
        self.uploaded = uploaded

    @property
    def studies(self) -> list[StudyAttributes]:
        return [study.attributes for study in self.report.studies.values()]


@pytest.fixture(scope="module")
async def worklist(stack: Stack, library: Path) -> AsyncIterator[Worklist]:
    """The library scanned and uploaded once for the module (a few seconds of Argon2 and I/O)."""
    email = "ward@example.org"
    async with HttpxTransport(stack.url) as transport:
        events = Events()
        session = await _new_account(stack, transport, email, events)
        scanned = await _ok(session, "scan", folder=str(library))
        uploaded = await _ok(session, "upload", sender_email=f"  {SENDER} ", message=MESSAGE)
        yield Worklist(session, events, email, scan_folder(library), scanned, uploaded)


@pytest.fixture
async def loaded(worklist: Worklist) -> Worklist:
    """The worklist with its personal studies loaded into the session."""
    opened = await _ok(worklist.session, "load_studies", source="personal")
    assert opened == {"total": len(worklist.report.studies), "failed": 0}
    return worklist


async def test_worker_session_scan_counts_match_scan_folder(worklist: Worklist) -> None:
    report = worklist.report
    assert worklist.scanned == {
        "found": report.found,
        "parsed": report.parsed,
        "unsupported": len(report.unsupported),
        "broken": len(report.broken),
        "studies": len(report.studies),
    }
    assert report.unsupported, "the library holds a text file and an empty file"
    assert report.broken, "the library holds a truncated DICOM file"
    progress = worklist.events.of("scan")
    assert progress, "the scan emits its counts"
    assert all(set(p) == {"found", "parsed", "unsupported", "broken"} for p in progress)
    found = [p["found"] for p in progress]
    assert found == sorted(found)
    assert found[-1] <= report.found


async def test_worker_session_upload_reports_progress_and_counts(worklist: Worklist) -> None:
    report, uploaded = worklist.report, worklist.uploaded
    assert uploaded["studies"] == len(report.studies)
    assert uploaded["uploaded"] + uploaded["already_stored"] == report.parsed
    assert uploaded["uploaded"] > 0
    assert uploaded["unsupported"] == len(report.unsupported)
    assert uploaded["broken"] == len(report.broken)
    assert uploaded["progress"]["phase"] == "finished"
    assert uploaded["progress"]["percent"] == 100.0

    progress = worklist.events.of("upload")
    assert len(progress) >= 2
    assert progress[-1]["phase"] == "finished"
    assert progress[-1]["files_uploaded"] == uploaded["uploaded"]
    assert {p["phase"] for p in progress} <= {"scanning", "uploading", "committing", "finished"}
    assert all({"speed", "percent", "bytes_total", "bytes_uploaded"} <= set(p) for p in progress)
    json.dumps(progress)  # events cross to the page as JSON


async def test_worker_session_upload_needs_a_scan_first(loaded: Worklist) -> None:
    error = await _refused(loaded.session, "upload", sender_email=SENDER)
    assert error["kind"] == "input"
    assert "Choose a folder first" in error["message"]


async def test_worker_session_account_shows_statistics_recovery_keys_and_sessions(
    loaded: Worklist,
) -> None:
    session = loaded.session
    key = await _ok(session, "create_recovery_key")
    assert set(key) == {"key_uid", "text", "file", "file_name"}
    assert format_key_uid(parse_recovery_text(key["text"])) == key["key_uid"]
    assert format_key_uid(parse_key_file(key["file"].encode("utf-8"))) == key["key_uid"]
    assert key["file_name"].endswith(".txt")

    account = await _ok(session, "account")
    assert key["key_uid"] in account["recovery_key_uids"]
    assert account["email"] == loaded.email
    assert account["studies"] == len(loaded.report.studies)
    assert account["files"] == loaded.uploaded["uploaded"]
    assert account["used_bytes"] >= loaded.uploaded["progress"]["bytes_uploaded"]
    assert account["limit_bytes"] > account["used_bytes"]
    assert account["two_factor_enabled"] is False
    assert isinstance(account["fingerprint"], str)
    assert account["fingerprint"].replace(" ", "").isdigit()
    assert [s["current"] for s in account["sessions"]] == [True]
    assert json.loads(json.dumps(account)) == account, "the page gets it as JSON"


async def test_worker_session_loads_the_personal_and_shared_worklists(loaded: Worklist) -> None:
    session, total = loaded.session, len(loaded.report.studies)
    opened = loaded.events.of("search")
    assert opened[-1] == {"opened": total, "total": total}

    assert await _ok(session, "load_studies", source="shared") == {"total": 0, "failed": 0}
    assert await _ok(session, "search", filters={}) == {"rows": [], "total": 0}
    assert await _ok(session, "load_studies", source="personal") == {"total": total, "failed": 0}
    assert (await _ok(session, "search", filters={}))["total"] == total


async def test_worker_session_search_rows_carry_sender_message_and_owner(
    loaded: Worklist,
) -> None:
    found = await _ok(loaded.session, "search", filters={})
    rows = found["rows"]
    assert found["total"] == len(rows) == len(loaded.report.studies)
    assert {row["study_instance_uid"] for row in rows} == set(loaded.report.studies)
    assert {row["sender_email"] for row in rows} == {SENDER}, "trimmed as typed"
    assert {row["message"] for row in rows} == {MESSAGE}
    assert {(row["owner"], row["is_owner"]) for row in rows} == {(loaded.email, True)}
    for row in rows:
        study = loaded.report.studies[row["study_instance_uid"]]
        assert row["patient_name"] == study.attributes.patient_name
        assert row["modalities"] == list(study.attributes.modalities)
        assert row["image_count"] <= study.instance_count
    dates = [row["study_date"] for row in rows]
    assert dates == sorted(dates, reverse=True), "newest first by default"

    by_id = await _ok(loaded.session, "search", filters={}, sort="patient_id", descending=False)
    ids = [row["patient_id"].casefold() for row in by_id["rows"]]
    assert ids == sorted(ids)


def _most_common(values: list[str]) -> str:
    return Counter(value for value in values if value).most_common(1)[0][0]


def _day(value: str) -> date | None:
    if len(value) != 8 or not value.isdigit():
        return None
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return None


def _person(value: str) -> str:
    return " ".join(value.replace("^", " ").casefold().split())


def _case(name: str, studies: list[StudyAttributes]) -> tuple[dict[str, Any], str, set[str]]:
    """A filter of the page, the ``today`` it runs on and the Study UIDs it must find."""
    dated = {a.study_instance_uid: d for a in studies if (d := _day(a.study_date)) is not None}
    days = sorted(dated.values())
    day = Counter(days).most_common(1)[0][0]
    if name == "patient_name":
        value = _most_common([a.patient_name for a in studies if "^" in a.patient_name])
        wanted = {
            a.study_instance_uid
            for a in studies
            if a.patient_name.casefold().startswith(value.casefold())
        }
        return {"patient_name": value.lower()}, "", wanted
    if name in {"patient_id", "accession_number", "patient_sex"}:
        value = _most_common([getattr(a, name) for a in studies])
        wanted = {
            a.study_instance_uid for a in studies if getattr(a, name).casefold() == value.casefold()
        }
        return {name: f" {value.lower()} "}, "", wanted
    if name == "referring_physician":
        value = _most_common([a.referring_physician for a in studies])
        part = next(p for p in value.split("^") if p.strip()).strip()
        wanted = {
            a.study_instance_uid for a in studies if _person(part) in _person(a.referring_physician)
        }
        return {"referring_physician": part.lower()}, "", wanted
    if name == "modality":
        value = _most_common([m for a in studies for m in a.modalities])
        wanted = {a.study_instance_uid for a in studies if value in a.modalities}
        return {"modality": value.lower()}, "", wanted
    if name == "date_range":
        start, end = days[len(days) // 4], days[3 * len(days) // 4]
        wanted = {uid for uid, d in dated.items() if start <= d <= end}
        return {"date_from": start.isoformat(), "date_to": end.isoformat()}, "", wanted
    if name == "date_from":
        start = days[len(days) // 2]
        wanted = {uid for uid, d in dated.items() if d >= start}
        return {"date_from": start.isoformat(), "date_to": ""}, "", wanted
    if name == "date_preset_today":
        wanted = {uid for uid, d in dated.items() if d == day}
        return {"date_preset": "today"}, day.isoformat(), wanted
    if name == "date_preset_this_month":
        wanted = {
            uid for uid, d in dated.items() if d.replace(day=1) == day.replace(day=1) and d <= day
        }
        return {"date_preset": "this_month", "patient_name": None}, day.isoformat(), wanted
    assert name == "date_preset_last_year"
    today = date(day.year + 1, 6, 15)
    wanted = {uid for uid, d in dated.items() if d.year == day.year}
    # A preset wins over a custom range.
    return {"date_preset": "last_year", "date_from": "1900-01-01"}, today.isoformat(), wanted


@pytest.mark.parametrize(
    "name",
    [
        "patient_name",
        "patient_id",
        "patient_sex",
        "accession_number",
        "referring_physician",
        "modality",
        "date_range",
        "date_from",
        "date_preset_today",
        "date_preset_this_month",
        "date_preset_last_year",
    ],
)
async def test_worker_session_search_filters_find_the_expected_rows(
    loaded: Worklist, name: str
) -> None:
    filters, today, wanted = _case(name, loaded.studies)
    assert 0 < len(wanted) < len(loaded.studies), "the filter must select a proper subset"
    found = await _ok(loaded.session, "search", filters=filters, today=today)
    assert {row["study_instance_uid"] for row in found["rows"]} == wanted
    assert found["total"] == len(loaded.studies)


async def test_worker_session_cancelled_load_answers_cancelled(loaded: Worklist) -> None:
    session, total = loaded.session, len(loaded.report.studies)
    assert await _ok(session, "cancel", request_id="r1") is None
    cancelled = await _refused(session, "load_studies", source="shared", request_id="r1")
    assert cancelled["kind"] == "cancelled"
    assert (await _ok(session, "search", filters={}))["total"] == total, "rows are kept"

    # The cancel is used up: the same id runs to the end next time.
    opened = await _ok(session, "load_studies", source="personal", request_id="r1")
    assert opened == {"total": total, "failed": 0}

    # A cancel while the worklist is being fetched.
    running = asyncio.ensure_future(
        answer(session, {"method": "load_studies", "args": {"request_id": "r2"}})
    )
    await asyncio.sleep(0)
    assert await _ok(session, "cancel", request_id="r2") is None
    late = await running
    assert late["ok"] is False
    assert late["error"]["kind"] == "cancelled"
    other = await _ok(session, "load_studies", source="personal", request_id="r3")
    assert other == {"total": total, "failed": 0}, "a cancel stops only its own request"


# Upload failures and deletion -----------------------------------------------------------------


async def test_worker_session_upload_and_delete_study(stack: Stack, tmp_path: Path) -> None:
    email = "dora@example.org"
    async with HttpxTransport(stack.url) as transport:
        session = await _new_account(stack, transport, email)
        empty = tmp_path / "empty"
        empty.mkdir()
        (empty / "notes.txt").write_text("not an image")
        assert (await _ok(session, "scan", folder=str(empty)))["parsed"] == 0
        nothing = await _refused(session, "upload", sender_email=SENDER)
        assert nothing["kind"] == "upload"

        assert (await _upload(session, _two_studies(tmp_path)))["uploaded"] == 2
        assert await _ok(session, "load_studies") == {"total": 2, "failed": 0}
        rows = (await _ok(session, "search", filters={}))["rows"]
        gone, kept = rows[0]["study_id"], rows[1]["study_id"]

        assert await _ok(session, "delete_study", study_id=gone) is None
        left = await _ok(session, "search", filters={})
        assert [row["study_id"] for row in left["rows"]] == [kept]
        assert left["total"] == 1
        assert await _ok(session, "load_studies") == {"total": 1, "failed": 0}
        again = await _refused(session, "delete_study", study_id=gone)
        assert (again["kind"], again["code"], again["status"]) == ("api", "not_found", 404)


# The JSON entry -------------------------------------------------------------------------------


async def _call(method: str, **args: Any) -> dict[str, Any]:
    """A request as the worker's JavaScript sends it: a JSON string in, a JSON string out."""
    text = await call(json.dumps({"method": method, "args": args}))
    assert isinstance(text, str)
    answered: dict[str, Any] = json.loads(text)
    return answered


async def test_worker_session_call_round_trips_json(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_session, "_session", None)
    with pytest.raises(RuntimeError, match="configure"):
        await _call("status")
    async with HttpxTransport(stack.url) as transport:
        configure(transport, Events())
        assert await _call("status") == {"ok": True, "value": {"state": "signed_out"}}
        private = await _call("_keys")
        assert (private["ok"], private["error"]["kind"]) == (False, "input")
        short = await _call("register", email="cal@example.org", password="x")
        assert (short["ok"], short["error"]["kind"]) == (False, "input")
        wrong = await _call("login", email="nobody@example.org", password="z" * 12)
        assert wrong == {
            "ok": False,
            "error": {
                "kind": "api",
                "code": "invalid_credentials",
                "status": 401,
                "message": wrong["error"]["message"],
            },
        }
        assert await _call("cancel", request_id="7") == {"ok": True, "value": None}


# Ended sessions and unreadable files -----------------------------------------------------------


async def test_worker_session_forgets_decrypted_rows_when_the_server_session_ends(
    stack: Stack, tmp_path: Path
) -> None:
    email = "ruth@example.org"
    async with HttpxTransport(stack.url) as first, HttpxTransport(stack.url) as second:
        session = await _new_account(stack, first, email)
        await _upload(session, _two_studies(tmp_path))
        assert (await _ok(session, "load_studies"))["total"] == 2

        # The same person ends this tab's session from another device (My Account, Sessions).
        elsewhere = Session(second, Events())
        await _ok(elsewhere, "login", email=email, password=PASSWORD)
        sessions = (await _ok(elsewhere, "account"))["sessions"]
        [ended] = [s["id"] for s in sessions if not s["current"]]
        await _ok(elsewhere, "revoke_session", session_id=ended)

        assert await _ok(session, "status") == {"state": "signed_out"}
        assert await _ok(session, "search", filters={}) == {"rows": [], "total": 0}


async def test_worker_session_sign_in_as_another_account_shows_none_of_the_previous_rows(
    stack: Stack, tmp_path: Path
) -> None:
    async with HttpxTransport(stack.url) as transport:
        session = await _new_account(stack, transport, "vic@example.org")
        await _upload(session, _two_studies(tmp_path))
        assert (await _ok(session, "load_studies"))["total"] == 2
        # Another tab of the same browser (one cookie jar) signs out; this worker hears nothing.
        other_tab = Session(transport, Events())
        assert await _ok(other_tab, "logout") is None
        walt = "walt@example.org"
        await _ok(other_tab, "register", email=walt, password=PASSWORD)
        await _ok(other_tab, "confirm", token=stack.token(walt, CONFIRM))

        signed_in = await _ok(session, "login", email=walt, password=PASSWORD)
        assert signed_in == {"state": "unlocked", "email": walt}
        assert await _ok(session, "search", filters={}) == {"rows": [], "total": 0}


async def test_worker_session_answers_a_file_gone_before_upload_as_an_error(
    stack: Stack, tmp_path: Path
) -> None:
    async with HttpxTransport(stack.url) as transport:
        session = await _new_account(stack, transport, "fay@example.org")
        folder = _two_studies(tmp_path)
        assert (await _ok(session, "scan", folder=str(folder)))["parsed"] == 2
        (folder / "MR_small.dcm").unlink()
        answered = await _ask(session, "upload", sender_email=SENDER)
        assert answered["ok"] is False
        assert answered["error"]["kind"] == "upload"
        assert "MR_small" not in answered["error"]["message"]


# Sharing -------------------------------------------------------------------------------------


async def test_worker_session_flags_a_senders_changed_key_until_it_is_trusted(
    stack: Stack, tmp_path: Path
) -> None:
    """A received study whose sender's key differs from the one remembered (ZK-4)."""
    async with HttpxTransport(stack.url) as one, HttpxTransport(stack.url) as other:
        ada = await _new_account(stack, one, "ada.sender@example.org")
        bob = await _new_account(stack, other, "bob.reader@example.org")
        await _upload(ada, _two_studies(tmp_path))
        await _ok(ada, "load_studies", source="personal")
        study_id = (await _ok(ada, "search", filters={}))["rows"][0]["study_id"]
        ada_fingerprint = (await _ok(ada, "account"))["fingerprint"]
        share = {"study_id": study_id, "email": "bob.reader@example.org", "permission": "view"}
        await _ok(ada, "create_share", **share)
        old = "11111 22222 33333 44444 55555 66666 77777 88888"
        await _ok(bob, "remember_fingerprints", seen={"ada.sender@example.org": old})
        await _ok(bob, "load_studies", source="shared")
        [row] = (await _ok(bob, "search", filters={}))["rows"]
        assert row["granter_email"] == "ada.sender@example.org"
        assert row["sender_fingerprint"] == ada_fingerprint
        assert f"fingerprint was {old}, now {ada_fingerprint}" in row["sender_check"]
        refused = await _refused(bob, "open_study", study_id=study_id)
        assert "changed since this device last saw them" in refused["message"]

        wrong = await _refused(
            bob, "accept_fingerprint", email="ada.sender@example.org", fingerprint=old
        )
        assert (wrong["kind"], "not the one you compared" in wrong["message"]) == ("input", True)
        accepted = await _ok(
            bob, "accept_fingerprint", email="ada.sender@example.org", fingerprint=ada_fingerprint
        )
        assert accepted == ada_fingerprint
        [row] = (await _ok(bob, "search", filters={}))["rows"]
        assert (row["sender_check"], row["sender_fingerprint"]) == ("same", ada_fingerprint)
        assert await _ok(bob, "open_study", study_id=study_id) is None

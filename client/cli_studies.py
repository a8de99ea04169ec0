"""The study commands of the CLI: upload, ls, search, get, rm, info.

Each needs the account keys, so each asks for the password and unlocks in memory. Long work
shows a progress line on standard error (redrawn in place on a terminal, a line every few
seconds otherwise), with the counts the user manual's upload panel shows.
"""

from __future__ import annotations

import getpass
import sys
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, get_args

from securepacs.client.api import ApiError
from securepacs.client.download import Downloader, DownloadProgress, IntegrityError, VersionMemory
from securepacs.client.httpx_transport import HttpxTransport
from securepacs.client.library import StudyRow, UnknownStudy, load_rows, resolve, short_id
from securepacs.client.scan_process import ScanFailed, ScanProcess
from securepacs.client.search import DatePreset, SortField, StudyFilter, WorklistIndex
from securepacs.client.sharing import (
    PERMISSION_LABELS,
    LinkProblem,
    Sharing,
    open_link_url,
    parse_link_url,
)
from securepacs.client.trust import FingerprintMemory
from securepacs.client.upload import (
    Scanner,
    Uploader,
    UploadError,
    UploadOptions,
    UploadProgress,
)
from securepacs.crypto import PERMISSION_DOWNLOAD

if TYPE_CHECKING:
    import argparse

    from securepacs.client.accounts import AccountFlows, Unlocked

__all__ = (
    "Session",
    "StudyCommandError",
    "add_study_commands",
    "complete_pending",
    "pick_study",
    "say",
    "secret_line",
)


class StudyCommandError(Exception):
    """A study command failed in a way the person can act on; the message says how."""


class Session(Protocol):
    """What a CLI command runs with: the signed-in flows, the config folder, the server."""

    flows: AccountFlows
    config_dir: Path
    server: str

    async def unlock(self) -> Unlocked:
        """The account's keys, unlocked with the password asked for now."""
        ...


def say(text: str) -> None:
    """One line of a command's output on standard output."""
    print(text, flush=True)  # noqa: T201


def secret_line(prompt: str) -> str:
    """A secret from a hidden prompt, or the next line of standard input (scripts, tests)."""
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    line = sys.stdin.readline()
    if not line:
        raise StudyCommandError(f"{prompt.strip(': ')} is required on standard input.")
    return line.rstrip("\n")


async def complete_pending(sharing: Sharing) -> None:
    """Seal pending shares whose recipients have registered; say what happened on stderr.

    A recipient this device has not seen before gets their fingerprint shown, as `share` shows
    it: sealing to a new account is sharing with it (protocol.md §5.6).
    """
    known = sharing.fingerprints.snapshot()
    done, problems = await sharing.complete_pending()
    for share in done:
        print(  # noqa: T201
            f"securepacs: {share.recipient_email} has an account now; your share "
            f"{share.share_id[:12]} is complete.",
            file=sys.stderr,
        )
        email = share.recipient_email.strip().lower()
        seen = sharing.fingerprints.recall(email)
        if seen is not None and email not in known:
            known[email] = seen
            print(  # noqa: T201
                f"securepacs: their key fingerprint: {seen}\nCompare it with them in person or "
                "by phone; a later change will be flagged.",
                file=sys.stderr,
            )
    for problem in problems:
        print(f"securepacs: a pending share stays pending: {problem}", file=sys.stderr)  # noqa: T201


def _mb(size: float) -> str:
    return f"{size / 1_000_000:,.1f} MB"


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes:02d}:{seconds:02d}"


class ProgressLine:
    """One status line on standard error."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self._last = 0.0
        self._last_text = ""

    def show(self, text: str, *, final: bool = False) -> None:
        """Redraw the line (a terminal) or print it now and then (a log)."""
        now = time.monotonic()
        if self.tty:
            sys.stderr.write("\r\x1b[2K" + text + ("\n" if final else ""))
            sys.stderr.flush()
        elif final or now - self._last >= 5 or text.split(" ", 1)[0] != self._last_text:
            self._last = now
            print(text, file=sys.stderr, flush=True)  # noqa: T201
        self._last_text = text.split(" ", 1)[0]

    def upload(self, progress: UploadProgress) -> None:
        """The upload panel's counts."""
        if progress.phase == "scanning":
            text = (
                f"Scanning: found {progress.found} files, parsed {progress.parsed}, "
                f"unsupported {progress.unsupported}, broken {progress.broken}"
            )
        else:
            text = (
                f"{progress.phase.capitalize()}: {progress.percent:3.0f}% | "
                f"{progress.files_uploaded}/{progress.files_total - progress.files_already_stored}"
                f" files | {_mb(progress.bytes_uploaded)} of {_mb(progress.bytes_total)} | "
                f"{_mb(progress.speed)}/s | {_clock(progress.elapsed)} | "
                f"unsupported {progress.unsupported}"
            )
            if progress.message and progress.message.startswith("Retrying"):
                text += f" | {progress.message}"
        self.show(text, final=progress.phase == "finished")

    def download(self, progress: DownloadProgress) -> None:
        """Files and bytes written."""
        self.show(
            f"Downloading: {progress.files_done}/{progress.files_total} files | "
            f"{_mb(progress.bytes_done)} of {_mb(progress.bytes_total)}",
            final=progress.files_done == progress.files_total,
        )


async def cmd_upload(s: Session, a: argparse.Namespace) -> None:
    """Upload a folder (or resume an interrupted upload of it)."""
    # Started first (by client/launch.py if it read the same folder from the command line):
    # the child imports pydicom and scans while this process imports and hashes the password.
    folder = Path(a.folder)
    scan_process: ScanProcess | None = getattr(a, "early_scan", None)
    if scan_process is not None and scan_process.folder != folder:
        scan_process.close()
        scan_process = None
    if scan_process is None and folder.is_dir():
        scan_process = ScanProcess.start(folder)
    scanner: Scanner
    if scan_process is not None:
        scanner = scan_process.scan
    else:
        # Here only: pydicom costs a fifth of a second of start-up that the child spares us.
        from securepacs.client.dicom import scan_folder

        scanner = scan_folder
    try:
        into = ""
        if a.into:
            unlocked, target = await pick_study(s, a.into)
            into = target.study_id
        else:
            unlocked = await s.unlock()
        line = ProgressLine()
        uploader = Uploader(
            s.flows.api,
            unlocked.keys,
            journal_dir=s.config_dir / "uploads",
            on_progress=line.upload,
            scanner=scanner,
        )
        options = UploadOptions(
            sender_email=unlocked.view.email if a.sender_email is None else a.sender_email,
            message=a.message or "",
            jobs=a.jobs,
            verify=a.verify,
            into=into,
        )
        result = await uploader.upload_folder(folder, options)
    except (UploadError, ScanFailed) as error:
        raise StudyCommandError(str(error)) from None
    finally:
        if scan_process is not None:
            scan_process.close()
    for outcome in result.studies:
        attributes = outcome.attributes
        what = "added to" if outcome.appended else "uploaded as"
        if not outcome.uploaded:
            say(
                f"{attributes.patient_name or '(no name)'} {attributes.study_date}: already "
                f"stored as {short_id(outcome.study_id)} ({outcome.already_stored} files)"
            )
            continue
        say(
            f"{attributes.patient_name or '(no name)'} {attributes.study_date}: "
            f"{outcome.uploaded} files {what} study {short_id(outcome.study_id)}"
        )
    for path in result.unsupported:
        say(f"skipped (not DICOM): {path}")
    for path, reason in result.broken:
        say(f"skipped (damaged DICOM, {reason}): {path}")
    progress = result.progress
    say(
        f"Upload finished! {progress.files_uploaded} files, {_mb(progress.bytes_uploaded)} in "
        f"{_clock(progress.elapsed)}; {progress.unsupported} unsupported, "
        f"{progress.broken} damaged, {progress.files_already_stored} already stored."
    )


def _filter(a: argparse.Namespace) -> StudyFilter:
    try:
        date_from = date.fromisoformat(a.date_from) if a.date_from else None
        date_to = date.fromisoformat(a.date_to) if a.date_to else None
    except ValueError:
        raise StudyCommandError("Dates are written YYYY-MM-DD, for example 2024-03-31.") from None
    return StudyFilter(
        patient_name=a.name or "",
        patient_id=a.patient_id or "",
        patient_sex=a.sex or "",
        accession_number=a.accession or "",
        referring_physician=a.referring or "",
        modality=a.modality or "",
        date_preset=a.date,
        date_from=date_from,
        date_to=date_to,
    )


def _table(rows: list[StudyRow]) -> None:
    header = (
        "ID",
        "Patient name",
        "Patient ID",
        "Sex",
        "Accession",
        "Date",
        "Mod",
        "Images",
        "Access",
    )
    lines = [header] + [
        (
            short_id(row.study_id),
            row.attributes.patient_name,
            row.attributes.patient_id,
            row.attributes.patient_sex,
            row.attributes.accession_number,
            row.attributes.study_date,
            "/".join(row.attributes.modalities),
            str(row.instance_count),
            "owner" if row.is_owner else PERMISSION_LABELS[row.permission].lower(),
        )
        for row in rows
    ]
    widths = [min(30, max(len(line[i]) for line in lines)) for i in range(len(header))]
    for line in lines:
        say("  ".join(cell[:30].ljust(width) for cell, width in zip(line, widths, strict=True)))


async def _rows(s: Session) -> tuple[Unlocked, list[StudyRow]]:
    unlocked = await s.unlock()
    memory = FingerprintMemory(s.config_dir / "fingerprints.json")
    rows, failed = await load_rows(s.flows.api, unlocked.keys)
    notices: list[str] = []
    shared, failed_shared = await load_rows(
        s.flows.api, unlocked.keys, "shared", fingerprints=memory, notices=notices
    )
    rows += shared
    failed += failed_shared
    for notice in notices:
        print(f"securepacs: {notice}", file=sys.stderr)  # noqa: T201
    try:
        await complete_pending(Sharing(s.flows.api, unlocked.keys, memory, s.server))
    except ApiError as error:
        print(f"securepacs: pending shares stay pending for now: {error.detail}", file=sys.stderr)  # noqa: T201
    for study_id in failed:
        print(  # noqa: T201
            f"securepacs: study {short_id(study_id)} does not open with your keys "
            "(changed on the server); it is left out.",
            file=sys.stderr,
        )
    return unlocked, rows


async def cmd_search(s: Session, a: argparse.Namespace) -> None:
    """List studies, filtered by any worklist field and sorted."""
    filter_ = _filter(a)
    unlocked, rows = await _rows(s)
    if a.mine:
        rows = [row for row in rows if row.is_owner]
    by_attributes = {id(row.attributes): row for row in rows}
    found = WorklistIndex(row.attributes for row in rows).search(
        filter_,
        date.today(),  # noqa: DTZ011 -- study dates are local calendar dates
        sort=a.sort,
        descending=not a.ascending,
    )
    selected = [by_attributes[id(attributes)] for attributes in found]
    _table(selected)
    say(f"{len(selected)} of {len(rows)} studies")
    del unlocked


async def pick_study(s: Session, typed: str) -> tuple[Unlocked, StudyRow]:
    """Unlock, then the one study of mine or shared with me whose id starts with ``typed``."""
    unlocked, rows = await _rows(s)
    try:
        study_id = resolve([row.study_id for row in rows], typed)
    except UnknownStudy as error:
        raise StudyCommandError(str(error)) from None
    return unlocked, next(row for row in rows if row.study_id == study_id)


def _downloader(s: Session, unlocked: Unlocked, *, download: bool = False) -> Downloader:
    return Downloader(
        s.flows.api,
        unlocked.keys,
        memory=VersionMemory(s.config_dir / "seen-versions.json"),
        fingerprints=FingerprintMemory(s.config_dir / "fingerprints.json"),
        download=download,
    )


def _is_link(typed: str) -> bool:
    return "://" in typed and "/s/" in typed


async def _link_downloader(
    typed: str, password: str | None, *, download: bool = False
) -> tuple[Downloader, str]:
    """The downloader of an anonymous link's study, and the study's id.

    ``download``: the command writes the files, which a View link does not allow.
    """
    try:
        address = parse_link_url(typed)
        if address.password_required and password is None:
            password = secret_line("Link password: ")
        transport = HttpxTransport(address.base_url)
        opened = await open_link_url(transport, address, password)
    except LinkProblem as error:
        raise StudyCommandError(str(error)) from None
    if download and opened.permission < PERMISSION_DOWNLOAD:
        await transport.aclose()
        raise StudyCommandError(
            "This link allows viewing the study, not downloading it. Ask the person who sent "
            "it for a link with Download permission."
        )
    return opened.downloader(download=True), opened.keys.study_id


async def cmd_get(s: Session, a: argparse.Namespace) -> None:
    """Download a study (mine, shared with me, or behind a link URL) as files or as a zip."""
    if _is_link(a.study):
        downloader, study_id = await _link_downloader(a.study, None, download=True)
    else:
        unlocked, row = await pick_study(s, a.study)
        if row.permission < PERMISSION_DOWNLOAD:
            raise StudyCommandError(
                "Your access to this study does not include downloading it. Ask the study's "
                "owner to share it with you with Download permission."
            )
        downloader, study_id = _downloader(s, unlocked, download=True), row.study_id
    line = ProgressLine()
    try:
        if a.zip:
            await downloader.to_zip(study_id, Path(a.zip), line.download)
            say(f"Study {short_id(study_id)} written to {a.zip}")
        else:
            await downloader.to_folder(study_id, Path(a.output), line.download)
            say(f"Study {short_id(study_id)} written to {a.output}")
    except IntegrityError as error:
        raise StudyCommandError(str(error)) from None
    finally:
        if _is_link(a.study):
            await downloader.api.transport.aclose()  # type: ignore[attr-defined]


async def cmd_rm(s: Session, a: argparse.Namespace) -> None:
    """Delete a study and free its storage."""
    _, row = await pick_study(s, a.study)
    await s.flows.api.delete_study(row.study_id)
    say(f"Study {short_id(row.study_id)} deleted ({row.instance_count} files, {_mb(row.size)}).")


async def cmd_info(s: Session, a: argparse.Namespace) -> None:
    """Properties of a study (mine, shared with me, or behind a link URL)."""
    if _is_link(a.study):
        downloader, study_id = await _link_downloader(a.study, None)
    else:
        unlocked, picked = await pick_study(s, a.study)
        downloader, study_id = _downloader(s, unlocked), picked.study_id
    try:
        opened = await downloader.open(study_id)
    except IntegrityError as error:
        raise StudyCommandError(str(error)) from None
    finally:
        if _is_link(a.study):
            await downloader.api.transport.aclose()  # type: ignore[attr-defined]
    row = opened.row
    attributes = row.attributes
    series = {entry.series_uid for entry in opened.manifest.entries}
    fields: list[tuple[str, Any]] = [
        ("Study id", row.study_id),
        ("Patient name", attributes.patient_name),
        ("Patient ID", attributes.patient_id),
        ("Sex", attributes.patient_sex),
        ("Accession number", attributes.accession_number),
        ("Referring physician", attributes.referring_physician),
        ("Study date", attributes.study_date),
        ("Description", attributes.study_description),
        ("Modalities", "/".join(attributes.modalities)),
        ("Study Instance UID", attributes.study_instance_uid),
        ("Series", len(series)),
        ("Images", len(opened.manifest.entries)),
        ("Size", _mb(sum(entry.plaintext_size for entry in opened.manifest.entries))),
        ("Owner", row.owner_email),
        ("Your access", "owner" if row.is_owner else PERMISSION_LABELS[row.permission]),
        ("Sender email", row.sender_email),
        ("Sender message", row.message),
        ("Uploaded", row.created_at[:19].replace("T", " ")),
        ("Manifest version", opened.manifest.manifest_version),
    ]
    for label, value in fields:
        say(f"{label + ':':21} {value}")


async def cmd_stats(s: Session, _: argparse.Namespace) -> None:
    """Studies, files and storage."""
    stats = await s.flows.api.stats()
    say(f"Studies: {stats.studies}\nFiles: {stats.files}")
    say(f"Used storage: {_mb(stats.used_bytes)} of {_mb(stats.limit_bytes)}")
    say(f"Shared studies: {stats.shared_studies}\nReceived studies: {stats.received_studies}")


def add_study_commands(sub: Any) -> None:
    """Register the study commands on the CLI's subparsers."""
    p = sub.add_parser("upload", help="encrypt and upload a folder of DICOM (reruns resume)")
    p.add_argument("folder")
    p.add_argument("--message", help="a note for the people you share the study with")
    p.add_argument("--sender-email", help="sender email shown with the study (default: yours)")
    p.add_argument("--jobs", type=int, default=4, help="parallel requests (default 4)")
    p.add_argument("--verify", action="store_true", help="read every file back and compare")
    p.add_argument(
        "--into", metavar="STUDY", help="add the files to a study shared with you with Edit"
    )
    p.set_defaults(run=cmd_upload)
    for name, helptext in (("ls", "list your studies"), ("search", "find studies")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--name", help="patient name; * matches any text")
        p.add_argument("--patient-id")
        p.add_argument("--sex", choices=["M", "F", "O"])
        p.add_argument("--accession")
        p.add_argument("--referring", help="referring physician")
        p.add_argument("--modality")
        p.add_argument("--date", choices=get_args(DatePreset), help="a study date preset")
        p.add_argument("--from", dest="date_from", help="study date from (YYYY-MM-DD)")
        p.add_argument("--to", dest="date_to", help="study date to (YYYY-MM-DD)")
        p.add_argument("--sort", choices=get_args(SortField), default="study_date")
        p.add_argument("--ascending", action="store_true")
        p.add_argument("--mine", action="store_true", help="show only my studies")
        p.set_defaults(run=cmd_search)
    p = sub.add_parser("get", help="download a study, or the study of a link")
    p.add_argument("study", help="study id (the first digits are enough) or a link URL")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("-o", "--output", help="folder to write the files to")
    target.add_argument("--zip", help="zip file to write")
    p.set_defaults(run=cmd_get)
    p = sub.add_parser("rm", help="delete a study")
    p.add_argument("study")
    p.set_defaults(run=cmd_rm)
    p = sub.add_parser("info", help="properties of a study, or of the study of a link")
    p.add_argument("study", help="study id or a link URL")
    p.set_defaults(run=cmd_info)
    sub.add_parser("stats", help="studies, files and used storage").set_defaults(run=cmd_stats)

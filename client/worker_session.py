"""The browser worker's session: the signed-in account's keys, kept in the worker between calls.

The web app (client/web) never holds a key: its main thread sends one JSON request per action
to the worker, and :func:`call` answers it here from the state of this module. Keys, the
password and every decrypted attribute stay in the worker's memory; the page gets only what it
shows (worklist rows of the signed-in person, counts, Key UIDs). A page reload ends the worker
and its keys: the server session may survive (Remember me), and the app then asks for the
password again to unlock (:meth:`Session.unlock`) without a new sign-in.

Every answer is JSON ``{"ok": true, "value": ...}`` or ``{"ok": false, "error": {...}}`` with
``kind`` (``api``, ``crypto``, ``input``, ``upload``, ``network``, ``cancelled``), the server's
``code`` where there is one and a message that says what the person can do next. Progress of a
scan, an upload or a search goes out as events through the ``emit`` callable.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast, get_args

import msgspec

from securepacs.client.accounts import AccountFlows, RecoveryNeeded, Unlocked
from securepacs.client.api import ApiError
from securepacs.client.download import IntegrityError
from securepacs.client.library import StudyRow, try_open_row
from securepacs.client.search import SortField, StudyFilter, WorklistIndex
from securepacs.client.study_port import StudyPortError, StudyPorts
from securepacs.client.transport import TransportFailure
from securepacs.client.upload import Uploader, UploadError, UploadOptions
from securepacs.crypto import CryptoError, fingerprint
from securepacs.crypto.recovery import (
    KEY_FILE_NAME,
    format_key_uid,
    parse_key_file,
    parse_recovery_text,
    recovery_key_file,
    recovery_text,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from securepacs.client.scanned import Instance, ScanProgress, ScanReport, StudyAttributes
    from securepacs.client.transport import Transport
    from securepacs.client.upload import Digest, Reader, UploadProgress

__all__ = (
    "Session",
    "SessionError",
    "answer",
    "call",
    "configure",
    "port",
    "shaped",
    "start_in_browser",
)

# Rows opened between two yields to the event loop: a Cancel from the page gets through.
_OPEN_SLICE: Final = 200
_EMPTY_FILTER: Final = StudyFilter()


class SessionError(Exception):
    """A request the session refuses before the server sees it; the text says what to do."""


class Cancelled(Exception):
    """The person cancelled the running request."""


def _row_json(index: int, row: StudyRow) -> dict[str, Any]:
    a = row.attributes
    return {
        "row": index,
        "study_id": row.study_id,
        "patient_name": a.patient_name,
        "patient_id": a.patient_id,
        "patient_sex": a.patient_sex,
        "accession_number": a.accession_number,
        "referring_physician": a.referring_physician,
        "study_date": a.study_date,
        "study_description": a.study_description,
        "modalities": list(a.modalities),
        "image_count": row.instance_count,
        "size": row.size,
        "owner": row.owner_email,
        "is_owner": row.is_owner,
        "study_instance_uid": a.study_instance_uid,
        "sender_email": row.sender_email,
        "message": row.message,
        "created_at": row.created_at,
    }


class _ReplayScanner:
    """Hands the uploader the scan the panel already ran, instead of reading the folder twice."""

    def __init__(self, report: ScanReport) -> None:
        self.report = report

    def __call__(
        self,
        folder: Path,
        on_progress: Callable[[ScanProgress], None] | None = None,
        *,
        on_instance: Callable[[Instance, StudyAttributes], None] | None = None,
    ) -> ScanReport:
        for study in self.report.studies.values():
            for instances in study.series.values():
                for instance in instances:
                    if on_instance is not None:
                        on_instance(instance, study.attributes)
        if on_progress is not None:
            on_progress(self.report.progress())
        return self.report


class Session:
    """One browser tab's account state; every public coroutine is an RPC method."""

    def __init__(
        self,
        transport: Transport,
        emit: Callable[[str, dict[str, Any]], None],
        digest: Digest | None = None,
        reader: Reader | None = None,
    ) -> None:
        self.flows = AccountFlows(transport)
        self.digest = digest
        self.reader = reader
        self.api = self.flows.api
        self.emit = emit
        self.unlocked: Unlocked | None = None
        self.pending: RecoveryNeeded | None = None
        self.rows: list[StudyRow] = []
        self.index = WorklistIndex(())
        self.scan_report: ScanReport | None = None
        self.scan_folder_path: Path | None = None
        self.cancelled: set[str] = set()
        self.ports: StudyPorts | None = None
        self._features: list[str] | None = None

    # Sign-in -------------------------------------------------------------------------------

    def _forget(self) -> None:
        """Drop the keys and everything opened or scanned with them (sign-out, expiry, switch)."""
        self.unlocked, self.pending = None, None
        self.rows, self.index = [], WorklistIndex(())
        self.scan_report, self.scan_folder_path = None, None
        self.ports, self._features = None, None

    def _signed_in(self, unlocked: Unlocked) -> dict[str, Any]:
        self.unlocked, self.pending = unlocked, None
        self.ports = StudyPorts(self.api, unlocked.keys, digest=self.digest)
        return {"state": "unlocked", "email": unlocked.view.email}

    def _keys(self) -> Unlocked:
        if self.unlocked is None:
            raise SessionError("Your keys are locked. Sign in again to continue.")
        return self.unlocked

    async def register(self, email: str, password: str) -> None:
        """Create the account's keys here and register them; a confirmation mail follows."""
        if len(password) < 10:
            raise SessionError("Choose a password of at least 10 characters.")
        await self.flows.register(email.strip(), password)

    async def confirm(self, token: str) -> None:
        """Confirm the email address with the token of the mailed link."""
        await self.flows.confirm(token)

    async def resend_confirmation(self, email: str) -> None:
        """Mail a fresh confirmation link (the answer is the same for unknown addresses)."""
        await self.api.resend_confirmation(email.strip())

    async def login(
        self,
        email: str,
        password: str,
        remember: bool = False,
        totp_code: str = "",
        recovery_code: str = "",
    ) -> dict[str, Any]:
        """Sign in and unlock; ``state`` says what the page shows next."""
        self._forget()
        try:
            unlocked = await self.flows.login(
                email.strip(),
                password,
                totp_code=totp_code.strip() or None,
                recovery_code=recovery_code.strip() or None,
                remember=remember,
            )
        except RecoveryNeeded as needed:
            self.unlocked, self.pending = None, needed
            return {"state": "recovery_needed", "email": needed.view.email}
        except ApiError as error:
            if error.code == "two_factor_required":
                return {"state": "two_factor"}
            raise
        return self._signed_in(unlocked)

    async def unlock(self, password: str) -> dict[str, Any]:
        """Unlock the keys of a session that outlived its tab (Remember me, a reload)."""
        try:
            return self._signed_in(await self.flows.unlock(password))
        except RecoveryNeeded as needed:
            self.unlocked, self.pending = None, needed
            return {"state": "recovery_needed", "email": needed.view.email}

    async def recover(
        self, key_text: str = "", key_file: str = "", old_password: str = ""
    ) -> dict[str, Any]:
        """After a password reset: re-wrap the keys from the recovery key or the last password."""
        if self.pending is None:
            raise SessionError("Nothing to recover: sign in with your new password first.")
        if key_file:
            key = parse_key_file(key_file.encode("utf-8"))
            unlocked = await self.flows.recover(self.pending, recovery_key=key)
        elif key_text.strip():
            unlocked = await self.flows.recover(
                self.pending, recovery_key=parse_recovery_text(key_text)
            )
        elif old_password:
            unlocked = await self.flows.recover(self.pending, old_password=old_password)
        else:
            raise SessionError(
                "Load your recovery key file, paste its text, or enter your last password."
            )
        return self._signed_in(unlocked)

    async def forgot_password(self, email: str) -> None:
        """Ask for a reset link by mail (the answer is the same for unknown addresses)."""
        await self.flows.forgot_password(email.strip())

    async def reset_password(self, token: str, password: str) -> None:
        """Set a new password from the mailed link; studies then need the recovery key."""
        if len(password) < 10:
            raise SessionError("Choose a password of at least 10 characters.")
        await self.flows.reset_password(token, password)

    async def logout(self) -> None:
        """End the server session and forget every key and decrypted row."""
        try:
            await self.api.logout()
        finally:
            self._forget()

    async def status(self) -> dict[str, Any]:
        """Whether the server session is alive and whether the keys are open in this worker."""
        try:
            me = await self.api.me()
        except ApiError as error:
            if error.status == 401:
                self._forget()
                return {"state": "signed_out"}
            raise
        if self.unlocked is not None:
            return {"state": "unlocked", "email": me.email}
        return {"state": "locked", "email": me.email, "needs_recovery": me.needs_recovery}

    # My Account ----------------------------------------------------------------------------

    async def account(self) -> dict[str, Any]:
        """Info, statistics, recovery-key status, two-factor state, fingerprint, sessions."""
        unlocked = self._keys()
        me, stats, sessions = await asyncio.gather(
            self.api.me(), self.api.stats(), self.api.sessions()
        )
        return {
            "email": me.email,
            "member_since": me.created_at,
            "account_type": "Free",
            "studies": stats.studies,
            "files": stats.files,
            "used_bytes": stats.used_bytes,
            "limit_bytes": stats.limit_bytes,
            "recovery_key_uids": me.recovery_key_uids,
            "two_factor_enabled": me.two_factor_enabled,
            "fingerprint": fingerprint(unlocked.keys.public),
            "sessions": msgspec.to_builtins(sessions),
        }

    async def current_session(self) -> dict[str, Any] | None:
        """This tab's server session; the page warns before it expires."""
        current = [s for s in await self.api.sessions() if s.current]
        return msgspec.to_builtins(current[0]) if current else None

    async def create_recovery_key(self, replace: bool = False) -> dict[str, Any]:
        """A new recovery key: its text and file go to the page once, to be saved by the person."""
        key = await self.flows.create_recovery_key(self._keys(), replace=replace)
        return {
            "key_uid": format_key_uid(key),
            "text": recovery_text(key),
            "file": recovery_key_file(key).decode("utf-8"),
            "file_name": KEY_FILE_NAME,
        }

    async def invalidate_recovery_keys(self) -> None:
        """Invalidate every recovery key of the account."""
        self._keys()
        await self.api.invalidate_recovery_keys()

    async def change_password(self, old: str, new: str) -> None:
        """Re-wrap the keys under a new password (other sessions end)."""
        if len(new) < 10:
            raise SessionError("Choose a new password of at least 10 characters.")
        await self.flows.change_password(self._keys(), old, new)

    async def start_two_factor(self) -> dict[str, str]:
        """A new authenticator secret and its otpauth:// URI, for the QR code."""
        secret, uri = await self.api.start_two_factor()
        return {"secret": secret, "otpauth_uri": uri}

    async def confirm_two_factor(self, code: str) -> list[str]:
        """Turn two-factor on with a first code; the ten recovery codes are shown once."""
        return await self.api.confirm_two_factor(code.strip())

    async def disable_two_factor(self, code: str) -> None:
        """Turn two-factor off with a current code or a recovery code."""
        await self.api.disable_two_factor(code.strip())

    async def revoke_session(self, session_id: str) -> None:
        """End one of my sessions."""
        await self.api.revoke_session(session_id)

    # Studies -------------------------------------------------------------------------------

    def _check(self, request_id: str) -> None:
        if request_id in self.cancelled:
            self.cancelled.discard(request_id)
            raise Cancelled

    async def load_studies(self, source: str = "personal", request_id: str = "") -> dict[str, Any]:
        """Fetch and open the worklist of ``source``; progress events while rows open."""
        keys = self._keys().keys
        summaries = await self.api.list_studies()
        self._check(request_id)
        wanted = [s for s in summaries if s.is_owner == (source == "personal")]
        rows: list[StudyRow] = []
        failed = 0
        for start in range(0, len(wanted), _OPEN_SLICE):
            for summary in wanted[start : start + _OPEN_SLICE]:
                row = try_open_row(keys, summary)
                if row is None:
                    failed += 1
                else:
                    rows.append(row)
            self.emit("search", {"opened": len(rows) + failed, "total": len(wanted)})
            await asyncio.sleep(0)
            self._check(request_id)
        self.rows = rows
        self.index = WorklistIndex(row.attributes for row in rows)
        return {"total": len(rows), "failed": failed}

    async def search(
        self,
        filters: dict[str, Any],
        sort: str = "study_date",
        descending: bool = True,
        today: str = "",
    ) -> dict[str, Any]:
        """Rows of the loaded worklist that match ``filters`` (the StudyFilter fields)."""
        try:
            filter_ = msgspec.convert(
                {k: v for k, v in filters.items() if v not in ("", None)}, StudyFilter
            )
        except msgspec.ValidationError as error:
            raise SessionError(
                f"A search field is not valid ({error}). Correct it and search again."
            ) from None
        day = date.fromisoformat(today) if today else datetime.now(UTC).date()
        # The index holds the rows' own attribute objects: identity finds each row, even where
        # two rows share a Study Instance UID.
        position = {id(row.attributes): index for index, row in enumerate(self.rows)}
        chosen = cast("SortField", sort) if sort in get_args(SortField) else "study_date"
        found = self.index.search(filter_, day, sort=chosen, descending=descending)
        return {
            "rows": [_row_json(position[id(a)], self.rows[position[id(a)]]) for a in found],
            "total": len(self.rows),
        }

    async def delete_study(self, study_id: str) -> None:
        """Delete one of my studies; it leaves the loaded worklist at once."""
        await self.api.delete_study(study_id)
        self.rows = [row for row in self.rows if row.study_id != study_id]
        self.index = WorklistIndex(row.attributes for row in self.rows)

    async def features(self) -> list[str]:
        """The optional features of this account's plan (``advanced_viewer``)."""
        self._keys()
        if self._features is None:
            self._features = list((await self.api.me()).features)
        return self._features

    async def open_study(self, study_id: str) -> None:
        """Open a study for a viewer or download window (its port is made next, by the worker).

        Opened afresh each time, so a window opened after an upload sees the newest version.
        """
        self._keys()
        if self.ports is None:  # pragma: no cover -- set whenever keys are
            raise SessionError("Your keys are locked. Sign in again to continue.")
        self.ports.advanced = "advanced_viewer" in await self.features()
        self.ports.refresh(study_id)
        await self.ports.study(study_id)

    async def cancel(self, request_id: str) -> None:
        """Ask the running request ``request_id`` to stop at its next step."""
        self.cancelled.add(request_id)

    # Upload --------------------------------------------------------------------------------

    async def scan(self, folder: str) -> dict[str, Any]:
        """Read the chosen folder (mounted into the worker) and count what it holds."""
        from securepacs.client.dicom import scan_folder  # pydicom: only when a folder comes

        self._keys()
        path = Path(folder)
        last = 0.0

        def progress(counts: ScanProgress) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= 0.1:
                last = now
                self.emit("scan", msgspec.to_builtins(counts))

        report = scan_folder(path, progress)
        self.scan_report, self.scan_folder_path = report, path
        return {
            "found": report.found,
            "parsed": report.parsed,
            "unsupported": len(report.unsupported),
            "broken": len(report.broken),
            "studies": len(report.studies),
        }

    async def upload(self, sender_email: str = "", message: str = "") -> dict[str, Any]:
        """Seal and upload the scanned folder; progress events as it goes."""
        unlocked = self._keys()
        if self.scan_report is None or self.scan_folder_path is None:
            raise SessionError("Choose a folder first, then wait for the scan to finish.")

        def progress(state: UploadProgress) -> None:
            self.emit(
                "upload",
                {**msgspec.to_builtins(state), "speed": state.speed, "percent": state.percent},
            )

        uploader = Uploader(
            self.api,
            unlocked.keys,
            scanner=_ReplayScanner(self.scan_report),
            on_progress=progress,
            digest=self.digest,
            reader=self.reader,
        )
        result = await uploader.upload_folder(
            self.scan_folder_path,
            UploadOptions(sender_email=sender_email.strip(), message=message),
        )
        self.scan_report = None
        return {
            "studies": len(result.studies),
            "uploaded": sum(s.uploaded for s in result.studies),
            "already_stored": sum(s.already_stored for s in result.studies),
            "unsupported": len(result.unsupported),
            "broken": len(result.broken),
            "progress": {
                **msgspec.to_builtins(result.progress),
                "speed": result.progress.speed,
                "percent": result.progress.percent,
            },
        }


def _error(kind: str, message: str, code: str = "", status: int = 0) -> dict[str, Any]:
    return {
        "ok": False,
        "error": {"kind": kind, "code": code, "status": status, "message": message},
    }


async def answer(session: Session, request: dict[str, Any]) -> dict[str, Any]:
    """Run one request ``{"method": name, "args": {...}}`` and shape its answer or error."""
    name = request.get("method", "")
    method: Callable[..., Awaitable[Any]] | None = (
        getattr(session, name, None) if isinstance(name, str) and not name.startswith("_") else None
    )
    if method is None or name not in _METHODS:
        return _error("input", f"Unknown request {name!r}. Reload the page.")
    return await shaped(lambda: method(**request.get("args", {})))


async def shaped(run: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    """``{"ok": true, "value": ...}`` with what ``run`` returns, or the error it raised."""
    try:
        return {"ok": True, "value": await run()}
    except ApiError as error:
        return _error("api", error.detail, error.code, error.status)
    except TransportFailure:
        return _error("network", "The server did not answer. Check your network and try again.")
    except CryptoError as error:
        return _error("crypto", str(error) or type(error).__name__)
    except (UploadError, SessionError, StudyPortError) as error:
        return _error("upload" if isinstance(error, UploadError) else "input", str(error))
    except IntegrityError as error:
        return _error("integrity", str(error))
    except Cancelled:
        return _error("cancelled", "Cancelled. Narrow the search and run it again.")
    except (TypeError, ValueError) as error:
        return _error("input", f"{error}. Check what you entered and try again.")
    except OSError:
        # No path in the text: the page shows it, and paths can name patients.
        return _error(
            "upload",
            "A file of the chosen folder can no longer be read. Choose the folder again.",
        )
    except Exception as error:  # noqa: BLE001 -- the worker's dispatch edge: always an answer
        return _error(
            "internal", "Something went wrong. Reload the page and try again.", type(error).__name__
        )


_METHODS: Final = frozenset(
    name
    for name, value in vars(Session).items()
    if not name.startswith("_") and asyncio.iscoroutinefunction(value)
)

_session: Session | None = None


def configure(
    transport: Transport,
    emit: Callable[[str, dict[str, Any]], None],
    digest: Digest | None = None,
    reader: Reader | None = None,
) -> None:
    """Start the tab's session (the worker calls this once after boot)."""
    global _session  # one session per worker is the point of this module
    _session = Session(transport, emit, digest, reader)


async def call(argument: str) -> str:
    """The worker's entry: JSON request in, JSON answer out."""
    if _session is None:
        raise RuntimeError("configure() the session before calling it")
    return json.dumps(await answer(_session, json.loads(argument)))


async def port(study_id: str, argument: str) -> str | bytes:
    """A study port's entry: JSON request in; the bytes of a file or piece, or a JSON answer.

    The worker binds each port to one study and passes that study's id, never the window's.
    """
    if _session is None:
        raise RuntimeError("configure() the session before calling it")
    session = _session

    async def run() -> Any:
        if session.ports is None:
            raise SessionError(
                "SecurePACS was signed out or locked in the window that opened this one. "
                "Sign in there and open the study again."
            )
        return await session.ports.handle(study_id, json.loads(argument))

    answered = await shaped(run)
    if answered["ok"] and isinstance(answered["value"], bytes):
        return answered["value"]
    return json.dumps(answered)


def start_in_browser() -> None:
    """Configure the session for the Pyodide worker: fetch, and events posted to the page."""
    import _securepacs_events  # type: ignore[import-not-found]  # registered by the worker

    from securepacs.client import chosen_files, webcrypto
    from securepacs.client.fetch_transport import FetchTransport

    configure(
        FetchTransport(),
        lambda kind, data: _securepacs_events.post(kind, json.dumps(data)),
        webcrypto.sha256,
        chosen_files.read,
    )

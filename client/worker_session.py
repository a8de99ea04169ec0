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
import contextlib
import json
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast, get_args

import msgspec

from securepacs.client.accounts import AccountFlows, RecoveryNeeded, Unlocked
from securepacs.client.api import ApiError
from securepacs.client.download import Downloader, IntegrityError
from securepacs.client.editing import EditProblem, edit_details
from securepacs.client.library import StudyRow, try_open_row
from securepacs.client.search import SortField, StudyFilter, WorklistIndex
from securepacs.client.sharing import (
    PERMISSION_LABELS,
    LinkProblem,
    ShareProblem,
    Sharing,
    expiry_of_date,
    open_link_url,
    parse_link_url,
)
from securepacs.client.study_port import StudyPortError, StudyPorts
from securepacs.client.transport import TransportFailure
from securepacs.client.trust import (
    SAME,
    FingerprintChanged,
    FingerprintMemory,
    KeysRefused,
    verified_keys,
)
from securepacs.client.upload import Uploader, UploadError, UploadOptions
from securepacs.crypto import PERMISSION_DOWNLOAD, CryptoError, fingerprint
from securepacs.crypto.recovery import (
    KEY_FILE_NAME,
    format_key_uid,
    parse_key_file,
    parse_recovery_text,
    recovery_key_file,
    recovery_text,
)
from securepacs.crypto.share import PERMISSIONS

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
        # What I may do with it; the page offers the actions this allows (ZK-5).
        "permission": PERMISSIONS[row.permission],
        "share_id": row.share_id,
        "expires_at": row.expires_at,
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
        self.transport = transport
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
        # Fingerprints this browser has seen per email; the page keeps them between visits.
        self.fingerprints = FingerprintMemory(on_change=lambda seen: emit("fingerprints", seen))
        # Per received study: the sender check, the sender's fingerprint and email.
        self.senders: dict[str, tuple[str, str, str]] = {}

    # Sign-in -------------------------------------------------------------------------------

    def _forget(self) -> None:
        """Drop the keys and everything opened or scanned with them (sign-out, expiry, switch)."""
        self.unlocked, self.pending = None, None
        self.rows, self.index = [], WorklistIndex(())
        self.scan_report, self.scan_folder_path = None, None
        self.ports, self._features = None, None
        self.senders = {}
        # The next person signed in on this tab brings their own remembered fingerprints.
        self.fingerprints = FingerprintMemory(on_change=self.fingerprints.on_change)

    def _signed_in(self, unlocked: Unlocked) -> dict[str, Any]:
        self.unlocked, self.pending = unlocked, None
        self.ports = StudyPorts(
            self.api, unlocked.keys, digest=self.digest, fingerprints=self.fingerprints
        )
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
            "shared_studies": stats.shared_studies,
            "received_studies": stats.received_studies,
            "notify_shares": me.notify_shares,
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
        """Fetch and open the worklist of ``source``: "personal", or "shared" with me.

        Progress events go out while rows open. Pending shares of mine whose recipients have
        registered since are completed first.
        """
        unlocked = self._keys()
        keys = unlocked.keys
        if source == "personal":
            # Best effort: the worklist must not fail because pending shares could not complete.
            with contextlib.suppress(ApiError, TransportFailure):
                await self._sharing().complete_pending()
        summaries = await self.api.list_studies("shared" if source == "shared" else "mine")
        self._check(request_id)
        rows: list[StudyRow] = []
        failed = 0
        self.senders = {}
        for start in range(0, len(summaries), _OPEN_SLICE):
            for summary in summaries[start : start + _OPEN_SLICE]:
                row = try_open_row(keys, summary)
                if row is None:
                    failed += 1
                    continue
                rows.append(row)
                if summary.grant is not None:
                    self.senders[row.study_id] = self._sender_check(
                        summary.granter_email or "", summary.granter_keys or b""
                    )
            self.emit("search", {"opened": len(rows) + failed, "total": len(summaries)})
            await asyncio.sleep(0)
            self._check(request_id)
        self.rows = rows
        self.index = WorklistIndex(row.attributes for row in rows)
        return {"total": len(rows), "failed": failed}

    def _sender_check(self, email: str, keys: bytes) -> tuple[str, str, str]:
        """The sender's fingerprint check, their fingerprint and email (ZK-4).

        The check is "new", "same", or the warning to show.
        """
        email = email.strip().lower()
        try:
            identity = self.fingerprints.identify(email, keys)
        except FingerprintChanged as changed:
            return str(changed), changed.now, email
        except KeysRefused as refused:
            return str(refused), "", email
        return identity.seen, identity.fingerprint, email

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
        rows = [_row_json(position[id(a)], self.rows[position[id(a)]]) for a in found]
        for row in rows:
            row["sender_check"], row["sender_fingerprint"], row["granter_email"] = self.senders.get(
                row["study_id"], ("", "", "")
            )
        return {"rows": rows, "total": len(self.rows)}

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
        if self.ports is None:
            raise SessionError("Your keys are locked. Sign in again to continue.")
        if self.unlocked is not None:  # an anonymous link's tab has no plan
            self.ports.advanced = "advanced_viewer" in await self.features()
        self.ports.refresh(study_id)
        await self.ports.study(study_id)

    async def cancel(self, request_id: str) -> None:
        """Ask the running request ``request_id`` to stop at its next step."""
        self.cancelled.add(request_id)

    # Sharing -------------------------------------------------------------------------------

    def _sharing(self) -> Sharing:
        return Sharing(self.api, self._keys().keys, self.fingerprints, _origin())

    async def remember_fingerprints(self, seen: dict[str, str]) -> None:
        """The fingerprints this browser saw before (the page keeps them between visits)."""
        self.fingerprints.learn(seen)

    async def accept_fingerprint(self, email: str, fingerprint: str) -> str:
        """Trust a person's changed keys, after the fingerprint was compared with them.

        The studies they shared that the loaded worklist flagged are flagged no more.
        """
        now = await self._sharing().accept_keys(email, fingerprint)
        email = email.strip().lower()
        for study_id, (_, seen, sender) in list(self.senders.items()):
            if sender == email and seen == now:
                self.senders[study_id] = (SAME, seen, sender)
        return now

    async def recipient(self, email: str) -> dict[str, Any]:
        """Whether ``email`` has an account, and their key fingerprint as this browser sees it."""
        try:
            person = await self._sharing().recipient(email)
        except FingerprintChanged as changed:
            return {
                "exists": True,
                "fingerprint": changed.now,
                "seen": "changed",
                "warning": str(changed),
            }
        if person is None:
            return {"exists": False, "fingerprint": "", "seen": "", "warning": ""}
        return {
            "exists": True,
            "fingerprint": person.fingerprint,
            "seen": person.seen,
            "warning": "",
        }

    async def shares(self, study_id: str) -> dict[str, Any]:
        """Manage Shares: who the study is shared with, and its links."""
        listing = await self.api.shares(study_id)
        return {
            "shares": [
                {**msgspec.to_builtins(share), "permission": PERMISSIONS[share.permission]}
                for share in listing.shares
            ],
            "links": [
                {**msgspec.to_builtins(link), "permission": PERMISSIONS[link.permission]}
                for link in listing.links
            ],
        }

    async def create_share(
        self, study_id: str, email: str, permission: str, expires: str = "", message: str = ""
    ) -> dict[str, Any]:
        """Share with one person, or, with my own email, create an anonymous link instead."""
        value = _permission(permission)
        expires_at = _expiry(expires)
        if email.strip().lower() == self._keys().view.email.strip().lower():
            if value > PERMISSION_DOWNLOAD:
                raise SessionError(
                    "Your own email creates an anonymous link, which allows View or Download "
                    "only. Choose one of those."
                )
            created = await self._sharing().create_link(study_id, value, expires_at)
            return {"link_url": created.url, "link_id": created.link.link_id}
        result = await self._sharing().share(study_id, email, value, expires_at, message)
        person = result.recipient
        return {
            "share_id": result.share.share_id,
            "pending": result.share.pending,
            "fingerprint": person.fingerprint if person else "",
            "seen": person.seen if person else "",
        }

    async def update_share(
        self, study_id: str, share_id: str, permission: str, expires: str = ""
    ) -> None:
        """New permission or expiry for one share of the study."""
        listing = await self.api.shares(study_id)
        share = next((s for s in listing.shares if s.share_id == share_id), None)
        if share is None:
            raise SessionError("This share no longer exists. Reload the list.")
        await self._sharing().update(share, _permission(permission), _expiry(expires))

    async def delete_share(self, share_id: str) -> None:
        """Revoke a share (or a link, by its id); access ends at once."""
        await self._sharing().unshare(share_id)

    async def create_link(
        self, study_id: str, permission: str, expires: str = "", password: str = ""
    ) -> dict[str, Any]:
        """A new anonymous link; its URL is in this answer only."""
        created = await self._sharing().create_link(
            study_id, _permission(permission), _expiry(expires), password or None
        )
        return {"link_url": created.url, "link_id": created.link.link_id}

    async def set_notifications(self, shared_with_me: bool) -> None:
        """My Account: "Email me on studies shared with me"."""
        self._keys()
        await self.api.set_notifications(shared_with_me=shared_with_me)

    async def edit_details(self, study_id: str, changes: dict[str, str]) -> dict[str, Any]:
        """Change a study's editable details (owner, Edit or Admin); the row as it is now."""
        keys = self._keys().keys
        downloader = Downloader(self.api, keys, fingerprints=self.fingerprints)
        row = await edit_details(downloader, keys, study_id, changes)
        self.rows = [row if r.study_id == study_id else r for r in self.rows]
        self.index = WorklistIndex(r.attributes for r in self.rows)
        position = next(i for i, r in enumerate(self.rows) if r.study_id == study_id)
        return _row_json(position, row)

    # Anonymous links -----------------------------------------------------------------------

    async def describe_link(self, url: str) -> dict[str, Any]:
        """Read a link URL here (its fragment never leaves the browser): does it need a password?"""
        return {"password_required": parse_link_url(url).password_required}

    async def open_link(self, url: str, password: str = "") -> dict[str, Any]:
        """Open an anonymous link: prove its secret to the server, open the study's envelope.

        The viewer and download windows this tab opens then read the study through its ports.
        """
        self._forget()
        address = parse_link_url(url)
        opened = await open_link_url(self.transport, address, password or None)
        ports = StudyPorts(opened.api, None, digest=self.digest, link=opened.keys, advanced=True)
        study = await ports.study(opened.keys.study_id)
        self.ports = ports
        view = await ports.view(opened.keys.study_id)
        creator = opened.api._opened
        creator_print = ""
        if creator is not None:
            creator_keys = verified_keys(creator.creator_keys)
            creator_print = fingerprint(creator_keys) if creator_keys else ""
        return {
            "study_id": opened.keys.study_id,
            "patient_name": view["patientName"],
            "study_date": view["studyDate"],
            "study_description": view["studyDescription"],
            "modalities": view["modalities"],
            "image_count": len(study.manifest.entries),
            "permission": PERMISSIONS[opened.permission],
            "permission_label": PERMISSION_LABELS[opened.permission],
            "can_download": opened.permission >= PERMISSION_DOWNLOAD,
            "expires_at": opened.expires_at,
            "created_by": opened.created_by,
            "creator_fingerprint": creator_print,
        }

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

    async def upload(
        self, sender_email: str = "", message: str = "", into: str = ""
    ) -> dict[str, Any]:
        """Seal and upload the scanned folder; progress events as it goes.

        ``into``: a study shared with me with Edit or Admin, which the files are added to.
        """
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
            UploadOptions(sender_email=sender_email.strip(), message=message, into=into),
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


def _origin() -> str:
    """This page's origin, where link URLs point (the worker runs on it)."""
    try:
        import js  # type: ignore[import-not-found]  # Pyodide's module
    except ImportError:
        return "http://127.0.0.1:8000"
    return str(js.location.origin)


def _permission(name: str) -> int:
    for value, label in PERMISSIONS.items():
        if label == name.strip().lower():
            return value
    raise SessionError("Choose a permission type: View, Download, Edit or Admin.")


def _expiry(text: str) -> int:
    """A date field's value (YYYY-MM-DD, or empty for none) as a signed expiry."""
    if not text.strip():
        return 0
    try:
        return expiry_of_date(date.fromisoformat(text.strip()))
    except ValueError:
        raise SessionError("The expiration date is not a date. Choose it again.") from None


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
    except (UploadError, SessionError, StudyPortError, ShareProblem, EditProblem) as error:
        return _error("upload" if isinstance(error, UploadError) else "input", str(error))
    except LinkProblem as error:
        return _error("link", str(error))
    except (FingerprintChanged, KeysRefused) as error:
        return _error("fingerprint", str(error))
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


async def port(study_id: str, argument: str, kind: str = "viewer") -> str | bytes | list[bytes]:
    """A study port's entry: JSON request in; bytes (a list for several files), or JSON out.

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
        download = kind == "download"
        return await session.ports.handle(study_id, json.loads(argument), download=download)

    answered = await shaped(run)
    value = answered["value"] if answered["ok"] else None
    if isinstance(value, bytes) or (
        isinstance(value, list) and value and all(isinstance(v, bytes) for v in value)
    ):
        return value
    return json.dumps(answered)


async def read_plan(study_id: str, file_ids: str, kind: str = "viewer") -> dict[str, Any] | None:
    """For the worker's own reader: the plan of a port's ``readMany`` (StudyPorts.read_plan).

    None when there is no plan to give (signed out, a file not in the study, too much asked):
    the worker then answers through :func:`port`, whose error says what to do. Content keys
    are in the plan, so only the worker calls this, never a window.
    """
    if _session is None or _session.ports is None:
        return None
    try:
        ids = [str(file_id) for file_id in json.loads(file_ids)]
        return await _session.ports.read_plan(study_id, ids, download=kind == "download")
    except Exception:  # noqa: BLE001 -- every failure is reported by the port's own answer
        return None


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

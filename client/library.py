"""The worklist on the client: fetch the encrypted index, open it, and name studies by id.

The server returns opaque rows; each is opened here with the account key (the study key is
unwrapped, then the metadata box opened). A row that does not open is reported, never shown
with made-up values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from securepacs.client.scanned import StudyAttributes
from securepacs.client.sealing import StudyMetadata, decode_metadata
from securepacs.client.trust import (
    FingerprintChanged,
    FingerprintMemory,
    KeysRefused,
    verified_keys,
)
from securepacs.crypto import (
    AuthenticationFailed,
    CryptoError,
    StudyKey,
    open_grant,
    open_metadata,
    open_note,
    unwrap_study_key,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from securepacs.client.api import ApiClient, StudySummaryView
    from securepacs.crypto import AccountKeys

__all__ = (
    "StudyRow",
    "UnknownStudy",
    "granter_of",
    "load_rows",
    "open_row",
    "resolve",
    "row_of",
    "short_id",
    "try_open_row",
)


class UnknownStudy(Exception):
    """No study, or more than one, matches what the person typed."""


class StudyRow(msgspec.Struct, frozen=True, kw_only=True):
    """A worklist row, decrypted: what the manual's result grid shows."""

    study_id: str
    owner_email: str
    is_owner: bool
    attributes: StudyAttributes
    sender_email: str
    message: str
    instance_count: int
    size: int
    manifest_version: int
    # The manifest version sealed inside the metadata box; differs from manifest_version only
    # when the server pairs boxes of different versions.
    metadata_version: int
    created_at: str
    # What I may do with it (protocol.md §8.1): 4 (admin) for my own studies.
    permission: int = 4
    # A study shared with me: its share, and the expiry of my access (0: none).
    share_id: str | None = None
    expires_at: int = 0


def short_id(study_id: str) -> str:
    """The first 12 hex digits: what listings show and commands accept."""
    return study_id[:12]


def granter_of(keys: AccountKeys, summary: StudySummaryView) -> bytes | None:
    """The Ed25519 key that granted me a shared study (None for my own).

    The grant must open with my keys for this very study, and be signed by the keys the server
    gives for its granter's email, whose fingerprint the caller then checks (protocol.md §8.5).

    Raises:
        CryptoError: the grant does not open, names another study, or another signer.
    """
    if summary.grant is None:
        return None
    opened = open_grant(summary.grant, keys)
    granter = verified_keys(summary.granter_keys)
    if opened.study_id.hex() != summary.study_id or granter is None:
        raise AuthenticationFailed
    if granter.ed25519 != opened.granter:
        raise AuthenticationFailed
    return opened.granter


def study_key_of(keys: AccountKeys, summary: StudySummaryView) -> StudyKey:
    """The study key: unwrapped if the study is mine, opened from my grant if it was shared.

    Raises:
        CryptoError: it is not mine or shared with me, or was altered.
    """
    study_id = bytes.fromhex(summary.study_id)
    if summary.grant is not None:
        granter_of(keys, summary)
        return open_grant(summary.grant, keys).study_key
    return unwrap_study_key(keys.account_key, study_id, summary.wrapped_key)


def open_row(keys: AccountKeys, summary: StudySummaryView) -> StudyRow:
    """Open one row; raises CryptoError or msgspec.DecodeError if it does not open."""
    study_id = bytes.fromhex(summary.study_id)
    study_key = study_key_of(keys, summary)
    if summary.grant is None:
        return row_of(summary, study_key)
    # A shared study's sender is whoever shared it, and the message is theirs.
    message = ""
    if summary.note is not None and summary.share_id is not None:
        message = open_note(study_key, study_id, bytes.fromhex(summary.share_id), summary.note)
    return row_of(summary, study_key, sender=summary.granter_email or "", message=message)


def row_of(
    summary: StudySummaryView,
    study_key: StudyKey,
    *,
    sender: str | None = None,
    message: str | None = None,
) -> StudyRow:
    """The row of a study whose key is known; the sender and message default to the upload's.

    Raises:
        CryptoError, msgspec.DecodeError: the metadata box does not open.
    """
    study_id = bytes.fromhex(summary.study_id)
    metadata: StudyMetadata = decode_metadata(open_metadata(study_key, study_id, summary.metadata))
    return StudyRow(
        study_id=summary.study_id,
        owner_email=summary.owner_email,
        is_owner=summary.is_owner,
        attributes=metadata.attributes,
        sender_email=metadata.sender_email if sender is None else sender,
        message=metadata.message if message is None else message,
        instance_count=summary.instance_count,
        size=summary.size,
        manifest_version=summary.manifest_version,
        metadata_version=metadata.manifest_version,
        created_at=summary.created_at,
        permission=summary.permission,
        share_id=summary.share_id,
        expires_at=summary.expires_at,
    )


def try_open_row(keys: AccountKeys, summary: StudySummaryView) -> StudyRow | None:
    """:func:`open_row`, or None for a row that does not open (reported, never guessed at)."""
    try:
        return open_row(keys, summary)
    except (CryptoError, msgspec.DecodeError, msgspec.ValidationError):
        return None


async def load_rows(
    api: ApiClient,
    keys: AccountKeys,
    source: str = "mine",
    *,
    fingerprints: FingerprintMemory | None = None,
    notices: list[str] | None = None,
) -> tuple[list[StudyRow], list[str]]:
    """Every study I can see in ``source``, opened; and the ids of rows that do not open.

    ``source``: "mine", or "shared" for the studies shared with me. With ``fingerprints``, the
    sender of each shared study is checked against the fingerprint remembered for their email
    (ZK-4): a first sighting adds a notice with the fingerprint to compare, a changed one
    leaves the row out with a notice that says why.
    """
    rows: list[StudyRow] = []
    failed: list[str] = []
    for summary in await api.list_studies(source):
        row = try_open_row(keys, summary)
        if row is None:
            failed.append(summary.study_id)
            continue
        if fingerprints is not None and summary.grant is not None:
            email = summary.granter_email or ""
            try:
                sender = fingerprints.identify(email, summary.granter_keys or b"")
            except (FingerprintChanged, KeysRefused) as error:
                if notices is not None:
                    notices.append(f"study {short_id(summary.study_id)} is left out: {error}")
                continue
            if sender.seen == "new" and notices is not None:
                notices.append(
                    f"{email} shared study {short_id(summary.study_id)} with you. Their key "
                    f"fingerprint is {sender.fingerprint}: compare it with them in person or by "
                    "phone."
                )
        rows.append(row)
    return rows, failed


def resolve(study_ids: Sequence[str], typed: str) -> str:
    """The one study id that starts with ``typed`` (at least 4 hex digits)."""
    prefix = typed.strip().lower()
    if len(prefix) < 4 or any(c not in "0123456789abcdef" for c in prefix):
        raise UnknownStudy(f"'{typed}' is not a study id. Use the id that `securepacs ls` shows.")
    found = [study_id for study_id in study_ids if study_id.startswith(prefix)]
    if not found:
        raise UnknownStudy(f"No study has the id {prefix}. `securepacs ls` lists your studies.")
    if len(found) > 1:
        raise UnknownStudy(f"More than one study starts with {prefix}; type more of the id.")
    return found[0]

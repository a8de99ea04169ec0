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
from securepacs.crypto import CryptoError, StudyKey, open_metadata, unwrap_study_key

if TYPE_CHECKING:
    from collections.abc import Sequence

    from securepacs.client.api import ApiClient, StudySummaryView
    from securepacs.crypto import AccountKeys

__all__ = (
    "StudyRow",
    "UnknownStudy",
    "load_rows",
    "open_row",
    "resolve",
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


def short_id(study_id: str) -> str:
    """The first 12 hex digits: what listings show and commands accept."""
    return study_id[:12]


def study_key_of(keys: AccountKeys, summary: StudySummaryView) -> StudyKey:
    """Unwrap a study key of mine (raises CryptoError if it is not mine or was altered)."""
    return unwrap_study_key(keys.account_key, bytes.fromhex(summary.study_id), summary.wrapped_key)


def open_row(keys: AccountKeys, summary: StudySummaryView) -> StudyRow:
    """Open one row; raises CryptoError or msgspec.DecodeError if it does not open."""
    study_id = bytes.fromhex(summary.study_id)
    study_key = study_key_of(keys, summary)
    metadata: StudyMetadata = decode_metadata(open_metadata(study_key, study_id, summary.metadata))
    return StudyRow(
        study_id=summary.study_id,
        owner_email=summary.owner_email,
        is_owner=summary.is_owner,
        attributes=metadata.attributes,
        sender_email=metadata.sender_email,
        message=metadata.message,
        instance_count=summary.instance_count,
        size=summary.size,
        manifest_version=summary.manifest_version,
        metadata_version=metadata.manifest_version,
        created_at=summary.created_at,
    )


def try_open_row(keys: AccountKeys, summary: StudySummaryView) -> StudyRow | None:
    """:func:`open_row`, or None for a row that does not open (reported, never guessed at)."""
    try:
        return open_row(keys, summary)
    except (CryptoError, msgspec.DecodeError, msgspec.ValidationError):
        return None


async def load_rows(api: ApiClient, keys: AccountKeys) -> tuple[list[StudyRow], list[str]]:
    """Every study I can see, opened; and the ids of rows that would not open."""
    rows: list[StudyRow] = []
    failed: list[str] = []
    for summary in await api.list_studies():
        row = try_open_row(keys, summary)
        if row is None:
            failed.append(summary.study_id)
        else:
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

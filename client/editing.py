"""Changing a study's details (Properties): a new metadata box and a new signed manifest.

The study's owner, or someone it was shared with with Edit or Admin, re-seals the metadata box
with the changed fields and signs the same list of files again as the next manifest version
(protocol.md §6.4, §15.4): readers accept the new manifest because the signer was given Edit
by someone they trust, and the server, which can read neither, only checks the permission.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Final

import msgspec

from securepacs.client.api import ApiError
from securepacs.client.library import StudyRow, row_of
from securepacs.client.sealing import decode_metadata, encode_metadata
from securepacs.crypto import PERMISSION_EDIT, open_metadata, seal_manifest, seal_metadata

if TYPE_CHECKING:
    from securepacs.client.download import Downloader
    from securepacs.crypto import AccountKeys

__all__ = ("EDITABLE", "EditProblem", "edit_details")

# The worklist fields a person may correct after upload; the UIDs and dates come from the files.
EDITABLE: Final = ("study_description", "accession_number", "referring_physician")


class EditProblem(Exception):
    """The details could not be changed; the message says what to do."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


async def edit_details(
    downloader: Downloader, keys: AccountKeys, study_id: str, changes: dict[str, str]
) -> StudyRow:
    """Change the study's editable fields; returns the row as everyone now sees it.

    Raises:
        EditProblem: a field that cannot be edited, no Edit permission, or the study changed
            meanwhile (reload and try again).
        IntegrityError: the study as the server has it does not verify.
    """
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise EditProblem(f"These details cannot be changed: {', '.join(sorted(unknown))}.")
    opened = await downloader.open(study_id)
    if opened.row.permission < PERMISSION_EDIT:
        raise EditProblem(
            "Your access to this study does not include changing it. Ask the study's owner "
            "for Edit permission."
        )
    summary = opened.detail.summary
    raw_id = bytes.fromhex(study_id)
    current = decode_metadata(open_metadata(opened.study_key, raw_id, summary.metadata))
    version = opened.manifest.manifest_version + 1
    attributes = msgspec.structs.replace(current.attributes, **changes)
    metadata = msgspec.structs.replace(current, attributes=attributes, manifest_version=version)
    sealed = seal_metadata(opened.study_key, raw_id, encode_metadata(metadata))
    entries = opened.manifest.entries
    body = {
        "uid_tag": _b64(summary.uid_tag),
        "wrapped_key": _b64(summary.wrapped_key),
        "metadata": _b64(sealed),
        "manifest": _b64(seal_manifest(opened.study_key, raw_id, version, entries, keys)),
        "manifest_version": version,
        "blob_ids": [entry.file_id.hex() for entry in entries],
    }
    try:
        detail = await downloader.api.commit_study(study_id, body)
    except ApiError as error:
        raise EditProblem(error.detail) from None
    downloader.memory.remember(study_id, version)
    return row_of(
        detail.summary,
        opened.study_key,
        sender=opened.row.sender_email,
        message=opened.row.message,
    )

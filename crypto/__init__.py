"""SecurePACS protocol core: the key hierarchy, envelopes, chunked AEAD, grants, notes and links.

This package implements docs/protocol.md (v0.1). It is pure and synchronous: no I/O, no state
beyond the chosen primitive backend (PyNaCl on CPython, libsodium.js in Pyodide). Every
function that needs randomness draws it from the system CSPRNG; the ``rng`` parameters exist
only so the test vectors can replay it.

Failures on bad data raise a :class:`CryptoError` subclass, one per failure layer; misuse of
arguments raises ``TypeError`` or ``ValueError``. Keys are opaque objects with redacted reprs.
"""

from __future__ import annotations

import logging

from securepacs.crypto.account import (
    SLOT_PASSKEY_PRF,
    SLOT_PASSWORD,
    SLOT_RECOVERY,
    AccountKeys,
    NewAccount,
    PublicKeys,
    change_password,
    create_account,
    key_uid,
    open_public_keys,
    open_slot,
    seal_slot,
    slot_info,
    unlock_with_password,
    unlock_with_secret,
)
from securepacs.crypto.errors import (
    AuthenticationFailed,
    CryptoError,
    InvalidRecoveryKey,
    MalformedEnvelope,
    NoMatchingKey,
    ParametersRejected,
    TruncatedStream,
    UnsupportedVersion,
)
from securepacs.crypto.fingerprint import fingerprint
from securepacs.crypto.kdf import (
    KdfParams,
    PasswordKeys,
    derive_password_keys,
    new_kdf_params,
)
from securepacs.crypto.keys import (
    AccountKey,
    AuthKey,
    ContentKey,
    LinkSecret,
    PasskeyPrfOutput,
    PasswordKek,
    RecoveryKey,
    StudyKey,
)
from securepacs.crypto.link import (
    LinkAccess,
    OpenedLink,
    encode_fragment,
    link_access,
    link_info,
    link_verifier,
    new_link_id,
    new_link_secret,
    open_link,
    parse_fragment,
    seal_link,
)
from securepacs.crypto.note import MAX_NOTE_BYTES, open_note, seal_note
from securepacs.crypto.recovery import (
    format_key_uid,
    new_recovery_key,
    parse_key_file,
    parse_recovery_text,
    recovery_key_file,
    recovery_text,
)
from securepacs.crypto.share import (
    PERMISSION_ADMIN,
    PERMISSION_DOWNLOAD,
    PERMISSION_EDIT,
    PERMISSION_VIEW,
    OpenedGrant,
    grant_info,
    open_grant,
    seal_grant,
)
from securepacs.crypto.stream import (
    StreamOpener,
    StreamSealer,
    ciphertext_size,
    new_file_id,
    open_instance,
    open_stream,
)
from securepacs.crypto.study import (
    Manifest,
    ManifestEntry,
    ciphertext_hash,
    new_study_id,
    new_study_key,
    open_manifest,
    open_metadata,
    seal_manifest,
    seal_metadata,
    study_uid_tag,
    unwrap_study_key,
    wrap_study_key,
)

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = (
    "MAX_NOTE_BYTES",
    "PERMISSION_ADMIN",
    "PERMISSION_DOWNLOAD",
    "PERMISSION_EDIT",
    "PERMISSION_VIEW",
    "SLOT_PASSKEY_PRF",
    "SLOT_PASSWORD",
    "SLOT_RECOVERY",
    "AccountKey",
    "AccountKeys",
    "AuthKey",
    "AuthenticationFailed",
    "ContentKey",
    "CryptoError",
    "InvalidRecoveryKey",
    "KdfParams",
    "LinkAccess",
    "LinkSecret",
    "MalformedEnvelope",
    "Manifest",
    "ManifestEntry",
    "NewAccount",
    "NoMatchingKey",
    "OpenedGrant",
    "OpenedLink",
    "ParametersRejected",
    "PasskeyPrfOutput",
    "PasswordKek",
    "PasswordKeys",
    "PublicKeys",
    "RecoveryKey",
    "StreamOpener",
    "StreamSealer",
    "StudyKey",
    "TruncatedStream",
    "UnsupportedVersion",
    "change_password",
    "ciphertext_hash",
    "ciphertext_size",
    "create_account",
    "derive_password_keys",
    "encode_fragment",
    "fingerprint",
    "format_key_uid",
    "grant_info",
    "key_uid",
    "link_access",
    "link_info",
    "link_verifier",
    "new_file_id",
    "new_kdf_params",
    "new_link_id",
    "new_link_secret",
    "new_recovery_key",
    "new_study_id",
    "new_study_key",
    "open_grant",
    "open_instance",
    "open_link",
    "open_manifest",
    "open_metadata",
    "open_note",
    "open_public_keys",
    "open_slot",
    "open_stream",
    "parse_fragment",
    "parse_key_file",
    "parse_recovery_text",
    "recovery_key_file",
    "recovery_text",
    "seal_grant",
    "seal_link",
    "seal_manifest",
    "seal_metadata",
    "seal_note",
    "seal_slot",
    "slot_info",
    "study_uid_tag",
    "unlock_with_password",
    "unlock_with_secret",
    "unwrap_study_key",
    "wrap_study_key",
)

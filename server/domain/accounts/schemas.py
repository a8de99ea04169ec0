"""Wire types of the accounts API. Byte fields travel as standard base64 in JSON."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

__all__ = (
    "ConfirmRequest",
    "EmailRequest",
    "KdfParamsWire",
    "LoginRequest",
    "LoginResponse",
    "MeResponse",
    "PreloginResponse",
    "RegisterRequest",
    "SessionOut",
    "SlotOut",
    "StatusResponse",
)

Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
Key32 = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]


class _Wire(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class KdfParamsWire(_Wire, frozen=True):
    """Argon2id parameters and salt of an account's password (protocol.md §4.1)."""

    alg: int
    opslimit: int
    memlimit_kib: int
    salt: Annotated[bytes, msgspec.Meta(min_length=16, max_length=16)]


class RegisterRequest(_Wire, frozen=True):
    """Everything a new account needs; the password itself never leaves the client."""

    email: Email
    kdf: KdfParamsWire
    auth_key: Key32
    public_keys: Annotated[bytes, msgspec.Meta(max_length=256)]
    password_slot: Annotated[bytes, msgspec.Meta(max_length=1024)]


class EmailRequest(_Wire, frozen=True):
    """Pre-login, resend confirmation, forgot password."""

    email: Email


class ConfirmRequest(_Wire, frozen=True):
    """The token from a mailed link."""

    token: Annotated[str, msgspec.Meta(min_length=16, max_length=128)]


class LoginRequest(_Wire, frozen=True):
    """Sign-in with the password-derived authentication key."""

    email: Email
    auth_key: Key32
    remember: bool = False
    totp_code: Annotated[str, msgspec.Meta(max_length=16)] | None = None
    recovery_code: Annotated[str, msgspec.Meta(max_length=32)] | None = None


class StatusResponse(_Wire, frozen=True):
    """A fixed acknowledgement that reveals nothing about the account."""

    status: str


class PreloginResponse(_Wire, frozen=True):
    """The parameters a client needs to derive its keys (fake but stable for unknown emails)."""

    kdf: KdfParamsWire


class SlotOut(_Wire, frozen=True):
    """A key slot as stored: opaque envelope plus what its header shows anyway."""

    id: str
    slot_type: int
    key_uid: str | None
    envelope: bytes


class LoginResponse(_Wire, frozen=True):
    """What a signed-in client needs to unlock its keys."""

    account_id: str
    email: str
    public_keys: bytes
    key_slots: list[SlotOut]
    needs_recovery: bool


class MeResponse(_Wire, frozen=True):
    """My Account: the account as the server sees it."""

    account_id: str
    email: str
    created_at: datetime
    email_confirmed: bool
    needs_recovery: bool
    recovery_key_uids: list[str]
    two_factor_enabled: bool
    features: list[str]
    # Notifications: "Email me on studies shared with me".
    notify_shares: bool = False


class SessionOut(_Wire, frozen=True):
    """One of my sessions."""

    id: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    remember: bool
    current: bool
    ip_address: str
    user_agent: str


class PasswordChangeRequest(_Wire, frozen=True):
    """A new password: its parameters, its authentication key and the re-wrapped slot."""

    current_auth_key: Key32
    kdf: KdfParamsWire
    auth_key: Key32
    password_slot: Annotated[bytes, msgspec.Meta(max_length=1024)]


class PasswordResetRequest(_Wire, frozen=True):
    """Complete a reset from the mailed link: new parameters and authentication key, no slot.

    The client cannot wrap the account bundle yet (it does not have it); the old slots stay and
    the next sign-in asks for the recovery key or the last usable password.
    """

    token: Annotated[str, msgspec.Meta(min_length=16, max_length=128)]
    kdf: KdfParamsWire
    auth_key: Key32


class PasswordSlotRequest(_Wire, frozen=True):
    """After recovery: the bundle wrapped under the current password's parameters."""

    password_slot: Annotated[bytes, msgspec.Meta(max_length=1024)]


class RecoveryKeyRequest(_Wire, frozen=True):
    """A recovery-key slot; ``replace`` invalidates every other recovery key at the same time."""

    slot: Annotated[bytes, msgspec.Meta(max_length=1024)]
    replace: bool = False


class RecoveryKeysResponse(_Wire, frozen=True):
    """Recovery key status: Key UIDs only, never key material."""

    key_uids: list[str]


class DeleteAccountRequest(_Wire, frozen=True):
    """Deleting an account asks for the authentication key again."""

    auth_key: Key32


class TwoFactorStartResponse(_Wire, frozen=True):
    """The secret for the authenticator app, as text and as an otpauth:// URI (for a QR code)."""

    secret: str
    otpauth_uri: str


class CodeRequest(_Wire, frozen=True):
    """A code from the authenticator app (or, to turn two-factor off, a recovery code)."""

    code: Annotated[str, msgspec.Meta(min_length=6, max_length=32)]


class RecoveryCodesResponse(_Wire, frozen=True):
    """Ten single-use two-factor recovery codes, shown once."""

    recovery_codes: list[str]

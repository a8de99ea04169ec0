"""Typed calls to the accounts API, and problem+json turned into :class:`ApiError`."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from securepacs.client.transport import Transport
    from securepacs.crypto import KdfParams

__all__ = ("ApiClient", "ApiError", "LoginView", "MeView", "SlotView")


class ApiError(Exception):
    """The server refused a request; ``detail`` is written for the person reading it."""

    def __init__(self, status: int, code: str, detail: str, retry_after: str | None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.retry_after = retry_after


class SlotView(msgspec.Struct, frozen=True):
    """A stored key slot."""

    id: str
    slot_type: int
    key_uid: str | None
    envelope: bytes


class LoginView(msgspec.Struct, frozen=True):
    """What the server returns at sign-in: public keys and every key slot."""

    account_id: str
    email: str
    public_keys: bytes
    key_slots: list[SlotView]
    needs_recovery: bool


class MeView(msgspec.Struct, frozen=True):
    """My Account."""

    account_id: str
    email: str
    created_at: str
    email_confirmed: bool
    needs_recovery: bool
    recovery_key_uids: list[str]
    two_factor_enabled: bool


class _Problem(msgspec.Struct):
    code: str = "unknown"
    detail: str = "The server refused the request."


def kdf_json(params: KdfParams) -> dict[str, Any]:
    """KdfParams as the API carries them."""
    return {
        "alg": params.alg,
        "opslimit": params.opslimit,
        "memlimit_kib": params.memlimit_kib,
        "salt": base64.b64encode(params.salt).decode("ascii"),
    }


def b64(data: bytes) -> str:
    """Bytes as the API carries them."""
    return base64.b64encode(data).decode("ascii")


class ApiClient:
    """One method per endpoint; raises ApiError for every non-2xx answer."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    async def _call(self, method: str, path: str, body: Any = None) -> bytes:
        response = await self.transport.request(method, path, body)
        if response.status >= 400:
            try:
                problem = msgspec.json.decode(response.body, type=_Problem)
            except msgspec.DecodeError:
                problem = _Problem()
            raise ApiError(response.status, problem.code, problem.detail, response.retry_after)
        return response.body

    async def register(self, body: dict[str, Any]) -> None:
        """POST /accounts/register."""
        await self._call("POST", "/api/v1/accounts/register", body)

    async def confirm(self, token: str) -> None:
        """POST /accounts/confirm."""
        await self._call("POST", "/api/v1/accounts/confirm", {"token": token})

    async def resend_confirmation(self, email: str) -> None:
        """POST /accounts/confirm/resend."""
        await self._call("POST", "/api/v1/accounts/confirm/resend", {"email": email})

    async def prelogin(self, email: str) -> dict[str, Any]:
        """POST /auth/prelogin: the KDF parameters as JSON."""
        body = await self._call("POST", "/api/v1/auth/prelogin", {"email": email})
        kdf: dict[str, Any] = msgspec.json.decode(body)["kdf"]
        return kdf

    async def login(self, body: dict[str, Any]) -> LoginView:
        """POST /auth/login."""
        return msgspec.json.decode(
            await self._call("POST", "/api/v1/auth/login", body), type=LoginView
        )

    async def logout(self) -> None:
        """POST /auth/logout."""
        await self._call("POST", "/api/v1/auth/logout")

    async def me(self) -> MeView:
        """GET /me."""
        return msgspec.json.decode(await self._call("GET", "/api/v1/me/"), type=MeView)

    async def keys(self) -> LoginView:
        """GET /me/keys."""
        return msgspec.json.decode(await self._call("GET", "/api/v1/me/keys"), type=LoginView)

    async def change_password(self, body: dict[str, Any]) -> None:
        """POST /me/password."""
        await self._call("POST", "/api/v1/me/password", body)

    async def store_password_slot(self, slot: bytes) -> None:
        """PUT /me/password-slot."""
        await self._call("PUT", "/api/v1/me/password-slot", {"password_slot": b64(slot)})

    async def request_reset(self, email: str) -> None:
        """POST /auth/password-reset."""
        await self._call("POST", "/api/v1/auth/password-reset", {"email": email})

    async def complete_reset(self, body: dict[str, Any]) -> None:
        """POST /auth/password-reset/complete."""
        await self._call("POST", "/api/v1/auth/password-reset/complete", body)

    async def add_recovery_key(self, slot: bytes, replace: bool) -> list[str]:
        """POST /me/recovery-keys; returns the Key UIDs."""
        body = await self._call(
            "POST", "/api/v1/me/recovery-keys", {"slot": b64(slot), "replace": replace}
        )
        uids: list[str] = msgspec.json.decode(body)["key_uids"]
        return uids

    async def invalidate_recovery_keys(self) -> None:
        """DELETE /me/recovery-keys."""
        await self._call("DELETE", "/api/v1/me/recovery-keys")

    async def start_two_factor(self) -> tuple[str, str]:
        """POST /me/2fa: (secret, otpauth URI)."""
        body = msgspec.json.decode(await self._call("POST", "/api/v1/me/2fa"))
        return body["secret"], body["otpauth_uri"]

    async def confirm_two_factor(self, code: str) -> list[str]:
        """POST /me/2fa/confirm: the recovery codes."""
        body = await self._call("POST", "/api/v1/me/2fa/confirm", {"code": code})
        codes: list[str] = msgspec.json.decode(body)["recovery_codes"]
        return codes

    async def disable_two_factor(self, code: str) -> None:
        """POST /me/2fa/disable."""
        await self._call("POST", "/api/v1/me/2fa/disable", {"code": code})

"""HTTP routes of the accounts API (``/api/v1``): thin, every rule lives in the service."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from litestar import Controller, Request, Response, delete, get, post, put
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from securepacs.server.domain.accounts.credentials import CredentialService
from securepacs.server.domain.accounts.schemas import (
    CodeRequest,
    ConfirmRequest,
    DeleteAccountRequest,
    EmailRequest,
    LoginRequest,
    LoginResponse,
    MeResponse,
    PasswordChangeRequest,
    PasswordResetRequest,
    PasswordSlotRequest,
    PreloginResponse,
    RecoveryCodesResponse,
    RecoveryKeyRequest,
    RecoveryKeysResponse,
    RegisterRequest,
    SessionOut,
    StatusResponse,
    TwoFactorStartResponse,
)
from securepacs.server.domain.accounts.services import SignedIn
from securepacs.server.domain.accounts.two_factor import confirm_totp, disable_totp, start_totp

if TYPE_CHECKING:
    from securepacs.server.context import ServerContext

__all__ = ("SESSION_COOKIE", "AccountController", "AuthController", "MeController")

SESSION_COOKIE: Final = "securepacs_session"
_SENT: Final = StatusResponse(status="If the address can receive it, a message is on its way.")

# Expires the session cookie in the browser (logout, account deletion).
_CLEARED_COOKIE: Final = Cookie(key=SESSION_COOKIE, value="", max_age=0, path="/")

Service = NamedDependency[CredentialService]
Me = NamedDependency[SignedIn]


def _limit_mail(ctx: ServerContext, request: Request[Any, Any, Any], email: str) -> None:
    ctx.limiter.hit("mail-ip", _client(request)[0])
    ctx.limiter.hit("mail-email", email.strip().lower())


def _client(request: Request[Any, Any, Any]) -> tuple[str, str]:
    host = request.client.host if request.client else ""
    return host, request.headers.get("user-agent", "")


class AccountController(Controller):
    """Registration and email confirmation."""

    path = "/api/v1/accounts"
    tags = ["accounts"]  # noqa: RUF012 -- Litestar reads a plain class attribute

    @post("/register", status_code=HTTP_202_ACCEPTED)
    async def register(self, data: JSONBody[RegisterRequest], accounts: Service) -> StatusResponse:
        """Create an account from client-made keys; a confirmation mail follows."""
        await accounts.register(
            data.email, data.kdf, data.auth_key, data.public_keys, data.password_slot
        )
        return _SENT

    @post("/confirm", status_code=200)
    async def confirm(self, data: JSONBody[ConfirmRequest], accounts: Service) -> StatusResponse:
        """Confirm the email address with the token from the mailed link."""
        await accounts.confirm(data.token)
        return StatusResponse(status="Your email address is confirmed. You can sign in now.")

    @post("/confirm/resend", status_code=HTTP_202_ACCEPTED)
    async def resend(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[EmailRequest],
        accounts: Service,
    ) -> StatusResponse:
        """Mail a new confirmation link (the answer is the same for every address)."""
        _limit_mail(accounts.ctx, request, data.email)
        await accounts.resend_confirmation(data.email)
        return _SENT


class AuthController(Controller):
    """Pre-login, sign-in and sign-out."""

    path = "/api/v1/auth"
    tags = ["auth"]  # noqa: RUF012 -- Litestar reads a plain class attribute

    @post("/prelogin", status_code=200)
    async def prelogin(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[EmailRequest],
        accounts: Service,
    ) -> PreloginResponse:
        """Argon2id parameters and salt for deriving keys from the password."""
        accounts.ctx.limiter.hit("prelogin-ip", _client(request)[0])
        accounts.ctx.limiter.hit("prelogin-email", data.email.strip().lower())
        return PreloginResponse(kdf=await accounts.prelogin(data.email))

    @post("/login", status_code=200)
    async def login(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[LoginRequest],
        accounts: Service,
    ) -> Response[LoginResponse]:
        """Sign in with the authentication key; sets the session cookie."""
        ip, agent = _client(request)
        accounts.ctx.limiter.hit("login-ip", ip)
        accounts.ctx.limiter.hit("login-email", data.email.strip().lower())
        token, _, view = await accounts.login(
            data.email, data.auth_key, data.remember, ip, agent, data.totp_code, data.recovery_code
        )
        settings = accounts.ctx.settings
        cookie = Cookie(
            key=SESSION_COOKIE,
            value=token,
            path="/",
            httponly=True,
            samesite="strict",
            secure=settings.behind_tls,
            max_age=settings.remember_days * 86400 if data.remember else None,
        )
        return Response(view, cookies=[cookie])

    @post("/password-reset", status_code=HTTP_202_ACCEPTED)
    async def request_reset(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[EmailRequest],
        accounts: Service,
    ) -> StatusResponse:
        """Forgot your password?: mail a reset link (the answer is the same for every address)."""
        _limit_mail(accounts.ctx, request, data.email)
        await accounts.request_reset(data.email)
        return _SENT

    @post("/password-reset/complete", status_code=200)
    async def complete_reset(
        self, data: JSONBody[PasswordResetRequest], accounts: Service
    ) -> StatusResponse:
        """Set the new password from the mailed link; studies need the recovery key next."""
        await accounts.complete_reset(data.token, data.kdf, data.auth_key)
        return StatusResponse(
            status="Your password is changed. Sign in; then load your recovery key to open "
            "your studies."
        )

    @post("/logout", status_code=HTTP_204_NO_CONTENT)
    async def logout(self, accounts: Service, me: Me) -> Response[None]:
        """End this session and clear its cookie."""
        await accounts.logout(me)
        return Response(None, cookies=[_CLEARED_COOKIE])


class MeController(Controller):
    """My Account and my sessions."""

    path = "/api/v1/me"
    tags = ["me"]  # noqa: RUF012 -- Litestar reads a plain class attribute

    @get("/")
    async def me(self, accounts: Service, me: Me) -> MeResponse:
        """The signed-in account."""
        return await accounts.me(me)

    @get("/keys")
    async def keys(self, accounts: Service, me: Me) -> LoginResponse:
        """Public keys and key slots again (a reload of the page unlocks from these)."""
        return await accounts.login_view(me.account)

    @get("/sessions")
    async def sessions(self, accounts: Service, me: Me) -> list[SessionOut]:
        """Every session of this account, the current one marked."""
        return await accounts.sessions(me)

    @post("/password", status_code=HTTP_204_NO_CONTENT)
    async def change_password(
        self, data: JSONBody[PasswordChangeRequest], accounts: Service, me: Me
    ) -> None:
        """Change the password: the client re-wrapped the slot; other sessions end."""
        await accounts.change_password(
            me, data.current_auth_key, data.kdf, data.auth_key, data.password_slot
        )

    @put("/password-slot", status_code=HTTP_204_NO_CONTENT)
    async def recovered(
        self, data: JSONBody[PasswordSlotRequest], accounts: Service, me: Me
    ) -> None:
        """After a reset: store the bundle re-wrapped under the new password."""
        await accounts.store_recovered_password_slot(me, data.password_slot)

    @get("/recovery-keys")
    async def recovery_keys(self, accounts: Service, me: Me) -> RecoveryKeysResponse:
        """Recovery key status, by Key UID."""
        return RecoveryKeysResponse(key_uids=await accounts.recovery_key_uids(me))

    @post("/recovery-keys", status_code=201)
    async def add_recovery_key(
        self, data: JSONBody[RecoveryKeyRequest], accounts: Service, me: Me
    ) -> RecoveryKeysResponse:
        """Add (or, with replace, swap in) a recovery-key slot."""
        uids = await accounts.add_recovery_key(me, data.slot, data.replace)
        return RecoveryKeysResponse(key_uids=uids)

    @delete("/recovery-keys", status_code=HTTP_204_NO_CONTENT)
    async def invalidate_recovery_keys(self, accounts: Service, me: Me) -> None:
        """Invalidate all recovery keys."""
        await accounts.invalidate_recovery_keys(me)

    @post("/delete", status_code=HTTP_204_NO_CONTENT)
    async def delete_account(
        self, data: JSONBody[DeleteAccountRequest], accounts: Service, me: Me
    ) -> Response[None]:
        """Delete the account with all its data."""
        await accounts.delete_account(me, data.auth_key)
        return Response(None, cookies=[_CLEARED_COOKIE])

    @post("/2fa", status_code=201)
    async def start_two_factor(self, accounts: Service, me: Me) -> TwoFactorStartResponse:
        """Begin turning on two-factor authentication: a secret for the authenticator app."""
        secret, uri = await start_totp(accounts.db, me.account)
        return TwoFactorStartResponse(secret=secret, otpauth_uri=uri)

    @post("/2fa/confirm", status_code=200)
    async def confirm_two_factor(
        self, data: JSONBody[CodeRequest], accounts: Service, me: Me
    ) -> RecoveryCodesResponse:
        """Turn two-factor on with a first code; returns the recovery codes, once."""
        accounts.ctx.limiter.hit("two-factor-account", me.account.id)
        return RecoveryCodesResponse(
            recovery_codes=await confirm_totp(accounts.db, me.account, data.code)
        )

    @post("/2fa/disable", status_code=HTTP_204_NO_CONTENT)
    async def disable_two_factor(
        self, data: JSONBody[CodeRequest], accounts: Service, me: Me
    ) -> None:
        """Turn two-factor off with a current code or an unused recovery code."""
        accounts.ctx.limiter.hit("two-factor-account", me.account.id)
        await disable_totp(accounts.db, me.account, data.code)

    @delete("/sessions/{session_id:str}", status_code=HTTP_204_NO_CONTENT)
    async def revoke(self, session_id: FromPath[str], accounts: Service, me: Me) -> None:
        """Revoke one session; its cookie opens nothing afterwards."""
        await accounts.revoke_session(me, session_id)

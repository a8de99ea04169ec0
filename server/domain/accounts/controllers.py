"""HTTP routes of the accounts API (``/api/v1``): thin, every rule lives in the service."""

from __future__ import annotations

from typing import Any, Final

from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from securepacs.server.context import ServerContext
from securepacs.server.domain.accounts.schemas import (
    ConfirmRequest,
    EmailRequest,
    LoginRequest,
    LoginResponse,
    MeResponse,
    PreloginResponse,
    RegisterRequest,
    SessionOut,
    StatusResponse,
)
from securepacs.server.domain.accounts.services import AccountService, SignedIn

__all__ = ("SESSION_COOKIE", "AccountController", "AuthController", "MeController")

SESSION_COOKIE: Final = "securepacs_session"
_SENT: Final = StatusResponse(status="If the address can receive it, a message is on its way.")

Service = NamedDependency[AccountService]
Me = NamedDependency[SignedIn]


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
    async def resend(self, data: JSONBody[EmailRequest], accounts: Service) -> StatusResponse:
        """Mail a new confirmation link (the answer is the same for every address)."""
        await accounts.resend_confirmation(data.email)
        return _SENT


class AuthController(Controller):
    """Pre-login, sign-in and sign-out."""

    path = "/api/v1/auth"
    tags = ["auth"]  # noqa: RUF012 -- Litestar reads a plain class attribute

    @post("/prelogin", status_code=200)
    async def prelogin(self, data: JSONBody[EmailRequest], accounts: Service) -> PreloginResponse:
        """Argon2id parameters and salt for deriving keys from the password."""
        return PreloginResponse(kdf=await accounts.prelogin(data.email))

    @post("/login", status_code=200)
    async def login(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[LoginRequest],
        accounts: Service,
        ctx: NamedDependency[ServerContext],
    ) -> Response[LoginResponse]:
        """Sign in with the authentication key; sets the session cookie."""
        ip, agent = _client(request)
        token, _, view = await accounts.login(data.email, data.auth_key, data.remember, ip, agent)
        settings = ctx.settings
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

    @post("/logout", status_code=HTTP_204_NO_CONTENT)
    async def logout(self, accounts: Service, me: Me) -> Response[None]:
        """End this session and clear its cookie."""
        await accounts.logout(me)
        return Response(None, cookies=[Cookie(key=SESSION_COOKIE, value="", max_age=0, path="/")])


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

    @delete("/sessions/{session_id:str}", status_code=HTTP_204_NO_CONTENT)
    async def revoke(self, session_id: FromPath[str], accounts: Service, me: Me) -> None:
        """Revoke one session; its cookie opens nothing afterwards."""
        await accounts.revoke_session(me, session_id)

"""Domain errors and the single place that turns them into problem+json (RFC 9457).

Services raise these; only this module knows HTTP. Each error has a stable ``code`` for clients,
a ``detail`` written for the person in front of the screen (what happened, what to do next), and
nothing else: no input values, no SQL, no exception text from below. What is logged is the code
and the request id, never the detail of the input.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar

from litestar import Response
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

if TYPE_CHECKING:
    from litestar import Request

__all__ = (
    "PROBLEM_JSON",
    "ChecksumMismatch",
    "Conflict",
    "DomainError",
    "EmailNotConfirmed",
    "Forbidden",
    "InvalidInput",
    "LinkExpired",
    "LinkNotFound",
    "LinkRevoked",
    "NotAuthenticated",
    "NotFound",
    "PermissionMissing",
    "RangeNotSatisfiable",
    "RateLimited",
    "StorageLimitReached",
    "UploadIncomplete",
    "WrongCredentials",
    "exception_handlers",
)

_log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"


class DomainError(Exception):
    """Base of the errors services raise."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    detail: ClassVar[str] = "The request could not be processed."

    def __init__(self, detail: str | None = None, *, retry_after: int | None = None) -> None:
        super().__init__(self.code)
        self.person_detail = detail or self.detail
        self.retry_after = retry_after


class InvalidInput(DomainError):
    """The request is well-formed JSON but a value is not acceptable."""

    status = 422
    code = "invalid_input"
    detail = "Some of the submitted values are not valid. Check the form and try again."


class WrongCredentials(DomainError):
    """Unknown account or wrong authentication key: indistinguishable on purpose."""

    status = 401
    code = "invalid_credentials"
    detail = "The email address or password is wrong. Check both, or use Forgot your password?."


class NotAuthenticated(DomainError):
    """No valid session."""

    status = 401
    code = "not_authenticated"
    detail = "Your session has ended. Sign in again to continue."


class EmailNotConfirmed(DomainError):
    """Right credentials, email not yet confirmed."""

    status = 403
    code = "email_not_confirmed"
    detail = (
        "Confirm your email address first: open the link in the confirmation email, "
        "or use Resend email confirmation."
    )


class Forbidden(DomainError):
    """Authenticated but not allowed."""

    status = 403
    code = "forbidden"
    detail = "You do not have access to this."


class NotFound(DomainError):
    """Absent, or not visible to this account (the two are not told apart)."""

    status = 404
    code = "not_found"
    detail = "This item does not exist or you do not have access to it."


class Conflict(DomainError):
    """The request conflicts with the current state."""

    status = 409
    code = "conflict"
    detail = "This change conflicts with the current state. Reload and try again."


class StorageLimitReached(DomainError):
    """Reserving space for an upload would pass the account's storage limit."""

    status = 413
    code = "storage_limit_reached"
    detail = (
        "Your storage is full. Delete studies you no longer need, or choose a plan with more "
        "storage in My Account."
    )


class ChecksumMismatch(DomainError):
    """A part's bytes do not hash to the checksum sent with them (damaged on the way)."""

    status = 422
    code = "checksum_mismatch"
    detail = "Part of the upload was damaged on the way. It is safe to send it again."


class UploadIncomplete(DomainError):
    """A commit names blobs that are not all complete."""

    status = 409
    code = "upload_incomplete"
    detail = "Some files of this study have not finished uploading. Run the upload again."


class RangeNotSatisfiable(DomainError):
    """A Range header outside the blob."""

    status = 416
    code = "range_not_satisfiable"
    detail = "The requested byte range is outside the file."


class RateLimited(DomainError):
    """Too many attempts; ``retry_after`` seconds until the next one is accepted."""

    status = 429
    code = "rate_limited"
    detail = "Too many attempts. Wait a moment, then try again."


class LinkNotFound(DomainError):
    """No such link, or the access key does not prove possession of its secret."""

    status = 404
    code = "link_not_found"
    detail = (
        "This link does not open: it is incomplete or was changed, or its password is wrong. "
        "Copy the whole link from the message you received, or ask the sender for a new one."
    )


class LinkExpired(DomainError):
    """The link's expiry has passed."""

    status = 410
    code = "link_expired"
    detail = "This link has expired. Ask the person who sent it for a new one."


class LinkRevoked(DomainError):
    """The link was deleted in Manage Shares (a deleted study's links are gone altogether)."""

    status = 410
    code = "link_revoked"
    detail = (
        "This link was revoked by the person who shared it. Ask them for a new one if you "
        "still need the study."
    )


class PermissionMissing(DomainError):
    """The share or link allows less than this request needs (ZK-5: server-enforced)."""

    status = 403
    code = "permission_missing"
    detail = "Your access to this study does not allow this. Ask the study's owner for more."


def _problem(
    status: int, code: str, title: str, detail: str, request: Request[Any, Any, Any]
) -> Response[dict[str, object]]:
    body: dict[str, object] = {
        "type": f"https://securepacs.invalid/problems/{code}",
        "title": title,
        "status": status,
        "code": code,
        "detail": detail,
        "request_id": request.scope.get("state", {}).get("request_id", ""),
    }
    return Response(body, status_code=status, media_type=PROBLEM_JSON)


def _domain(request: Request[Any, Any, Any], error: DomainError) -> Response[dict[str, object]]:
    _log.info("domain error", extra={"code": error.code, "status": error.status})
    response = _problem(
        error.status, error.code, type(error).__name__, error.person_detail, request
    )
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def _validation(
    request: Request[Any, Any, Any], _: ValidationException
) -> Response[dict[str, object]]:
    # Litestar's validation text can quote submitted values; the person gets a fixed message.
    return _problem(
        400,
        "invalid_request",
        "InvalidRequest",
        "The request is not in the expected format. Update the client and try again.",
        request,
    )


def _http(request: Request[Any, Any, Any], error: HTTPException) -> Response[dict[str, object]]:
    code = "not_found" if isinstance(error, NotFoundException) else f"http_{error.status_code}"
    detail = NotFound.detail if isinstance(error, NotFoundException) else "The request failed."
    return _problem(error.status_code, code, "HTTPError", detail, request)


def _internal(request: Request[Any, Any, Any], error: Exception) -> Response[dict[str, object]]:
    # Only the type is logged: exception text from drivers can carry parameters and values.
    _log.error("unhandled error", extra={"error_type": type(error).__name__})
    return _problem(
        HTTP_500_INTERNAL_SERVER_ERROR,
        "internal_error",
        "InternalError",
        "Something went wrong on the server. Try again; if it keeps failing, report the request "
        "id.",
        request,
    )


def exception_handlers() -> dict[type[Exception], object]:
    """The mapping create_app installs: every exception ends as problem+json."""
    return {
        DomainError: _domain,
        ValidationException: _validation,
        HTTPException: _http,
        Exception: _internal,
    }

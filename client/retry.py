"""Retrying requests that failed for reasons that pass: a dropped connection, a restarting server.

Only failures that another attempt can cure are retried (transport errors, 408, 429, 5xx);
the waits grow exponentially with jitter, and each retry is reported so the person sees why the
upload is slower than it was.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Final, TypeVar

from securepacs.client.api import ApiError
from securepacs.client.transport import TransportFailure

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ("RetryPolicy", "retrying")

T = TypeVar("T")
_RETRYABLE_STATUS: Final = frozenset({408, 425, 429, 500, 502, 503, 504})


class RetryPolicy:
    """How often and how patiently to retry; ``on_retry(message)`` hears of each retry."""

    def __init__(
        self,
        attempts: int = 8,
        first_wait: float = 0.5,
        max_wait: float = 30.0,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        self.attempts = attempts
        self.first_wait = first_wait
        self.max_wait = max_wait
        self.on_retry = on_retry

    def wait(self, attempt: int, retry_after: str | None) -> float:
        """Seconds before attempt ``attempt + 1`` (the server's Retry-After wins)."""
        if retry_after and retry_after.isdigit():
            return min(self.max_wait, float(retry_after))
        base: float = min(self.max_wait, self.first_wait * 2.0**attempt)
        return base * (0.5 + random.random() / 2)  # noqa: S311 -- jitter, not a secret


def _retryable(error: Exception) -> tuple[bool, str | None, str]:
    if isinstance(error, TransportFailure):
        return True, None, "the connection to the server failed"
    if isinstance(error, ApiError) and error.status in _RETRYABLE_STATUS:
        return True, error.retry_after, f"the server answered {error.status}"
    return False, None, ""


async def retrying(policy: RetryPolicy, action: Callable[[], Awaitable[T]]) -> T:
    """Run ``action`` until it succeeds, a failure is not retryable, or attempts run out."""
    attempt = 0
    while True:
        try:
            return await action()
        except (TransportFailure, ApiError) as error:
            retry, retry_after, reason = _retryable(error)
            attempt += 1
            if not retry or attempt >= policy.attempts:
                raise
            wait = policy.wait(attempt - 1, retry_after)
            if policy.on_retry is not None:
                policy.on_retry(
                    f"Retrying: {reason}; next attempt in {wait:.0f} s "
                    f"({attempt + 1} of {policy.attempts})."
                )
            await asyncio.sleep(wait)

"""Fixed-window rate limits per account and per address, answered with 429 and Retry-After.

Counts live in this process's memory: right for the one-node default. Several processes behind
a load balancer need a shared counter (Redis, on the scale-out path); until then each process
limits on its own, which bounds an attacker at N times the limit.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Final

from securepacs.server.errors import RateLimited

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ("LIMITS", "RateLimiter")

# (attempts, window in seconds) per bucket; the key is an email or an IP address.
LIMITS: Final = {
    "prelogin-ip": (60, 60),
    "prelogin-email": (30, 60),
    "login-email": (10, 300),
    "login-ip": (50, 300),
    "mail-email": (3, 3600),
    "mail-ip": (20, 3600),
    "two-factor-account": (10, 300),
    # Failed anonymous-link attempts: a link's access key is 256 bits, so these only slow a
    # guesser of link passwords, and cap the work a flood of bad keys costs.
    "link-id": (20, 300),
    "link-ip": (100, 300),
    "keys-account": (60, 60),
}
_MAX_KEYS: Final = 100_000


class RateLimiter:
    """Counts attempts per (bucket, key) in fixed windows."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[tuple[str, str], tuple[float, int]] = {}

    def check(self, bucket: str, key: str) -> None:
        """Raise RateLimited if the bucket is over its limit now, without counting an attempt."""
        limit, window = LIMITS[bucket]
        now = self._clock()
        start, count = self._windows.get((bucket, key), (now, 0))
        if now - start < window and count >= limit:
            raise RateLimited(retry_after=max(1, math.ceil(start + window - now)))

    def hit(self, bucket: str, key: str) -> None:
        """Count one attempt; raises RateLimited once the bucket's limit is exceeded."""
        limit, window = LIMITS[bucket]
        now = self._clock()
        start, count = self._windows.get((bucket, key), (now, 0))
        if now - start >= window:
            start, count = now, 0
        count += 1
        if len(self._windows) >= _MAX_KEYS:
            # Memory stays bounded under a flood of distinct keys: forget expired windows.
            self._windows = {k: v for k, v in self._windows.items() if now - v[0] < window}
        self._windows[(bucket, key)] = (start, count)
        if count > limit:
            raise RateLimited(retry_after=max(1, math.ceil(start + window - now)))

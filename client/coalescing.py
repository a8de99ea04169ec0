"""Requests that the studies of one upload share: UID-tag lookups, small files and commits.

A folder often holds many small studies (one file each, for a folder of test images or of
radiographs). Asked for study by study, each would cost a lookup and a blob request of its
own, and per-request costs, not bytes, would bound the upload. Here the studies that are
being sent at the same moment share those requests; each study is still committed (or
refused) on its own.
"""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

from securepacs.client.retry import RetryPolicy, retrying

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from securepacs.client.api import ApiClient, CommitOutcomeView, StudySummaryView

__all__ = (
    "COMMIT_BYTES",
    "LOOKUP_TAGS",
    "MAX_COMMITS",
    "Batches",
    "Coalesced",
    "commits",
    "lookups",
)

# What the server takes in one call (server/domain/studies/schemas.py).
LOOKUP_TAGS: Final = 1000
MAX_COMMITS: Final = 100
# Far below the server's 64 MiB body limit for commits: a few large manifests fill a call.
COMMIT_BYTES: Final = 16 * 1024 * 1024
Item = TypeVar("Item")
Result = TypeVar("Result")
Key = TypeVar("Key")
Value = TypeVar("Value")
Answer = TypeVar("Answer")


def _abandon(futures: list[asyncio.Future[Result]]) -> None:
    # The task that failed reports the error to the task group; whoever waits on these
    # futures is cancelled with it, so they carry no error of their own (none to go unread).
    for future in futures:
        future.cancel()


class Coalesced(Generic[Key, Value, Answer]):
    """Keyed requests that go many to a call.

    While one call is in flight, the requests made meanwhile wait and go together in the
    next, so an idle client asks at once and a busy one asks less often, for more.

    ``ask`` answers a list of (key, value) pairs with an answer for every key; it does its own
    retrying. A call carries at most ``max_items`` values and, when ``size`` measures them, at
    most ``max_bytes`` of them (but always at least one).
    """

    def __init__(
        self,
        group: asyncio.TaskGroup,
        ask: Callable[[list[tuple[Key, Value]]], Awaitable[Mapping[Key, Answer]]],
        *,
        max_items: int,
        max_bytes: int = 0,
        size: Callable[[Value], int] = lambda _: 0,
    ) -> None:
        self._group = group
        self._ask_for = ask
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._size = size
        self._waiting: dict[Key, tuple[Value, asyncio.Future[Answer]]] = {}
        self._asking = False

    def submit(self, key: Key, value: Value) -> asyncio.Future[Answer]:
        """The answer for ``key``, once a call has carried it."""
        if key in self._waiting:
            raise ValueError("this key is already waiting for an answer")
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting[key] = (value, future)
        if not self._asking:
            self._asking = True
            self._group.create_task(self._ask())
        return future

    async def _ask(self) -> None:
        asked: dict[Key, tuple[Value, asyncio.Future[Answer]]] = {}
        try:
            while self._waiting:
                # What the other tasks submit in this same moment goes in the same call.
                await asyncio.sleep(0)
                asked = {key: self._waiting.pop(key) for key in self._next_keys()}
                answers = await self._ask_for([(key, value) for key, (value, _) in asked.items()])
                for key, (_, future) in asked.items():
                    if not future.done():  # its task may have been cancelled meanwhile
                        future.set_result(answers[key])
                asked = {}
        except BaseException:
            _abandon([future for _, future in (*asked.values(), *self._waiting.values())])
            self._waiting.clear()
            raise
        finally:
            self._asking = False

    def _next_keys(self) -> list[Key]:
        keys: list[Key] = []
        total = 0
        for key, (value, _) in self._waiting.items():
            size = self._size(value)
            full = len(keys) == self._max_items or total + size > self._max_bytes > 0
            if keys and full:
                break
            keys.append(key)
            total += size
        return keys


def lookups(
    api: ApiClient, group: asyncio.TaskGroup, policy: RetryPolicy
) -> Coalesced[bytes, None, StudySummaryView | None]:
    """Which of the account's studies holds a UID tag (None: no study yet), many per call."""

    async def ask(items: list[tuple[bytes, None]]) -> dict[bytes, StudySummaryView | None]:
        tags = [tag for tag, _ in items]
        found = await retrying(policy, functools.partial(api.lookup_studies, tags))
        by_tag = {summary.uid_tag: summary for summary in found}
        return {tag: by_tag.get(tag) for tag in tags}

    return Coalesced(group, ask, max_items=LOOKUP_TAGS)


def commits(
    api: ApiClient, group: asyncio.TaskGroup, policy: RetryPolicy
) -> Coalesced[str, dict[str, Any], CommitOutcomeView]:
    """Study commits, many per call; each study is committed (or refused) on its own."""

    async def ask(items: list[tuple[str, dict[str, Any]]]) -> dict[str, CommitOutcomeView]:
        # A retried commit is answered as done (server/domain/studies/services.py), so the
        # whole call can be retried.
        outcomes = await retrying(policy, functools.partial(api.commit_studies, items))
        return {outcome.study_id: outcome for outcome in outcomes}

    return Coalesced(group, ask, max_items=MAX_COMMITS, max_bytes=COMMIT_BYTES, size=_commit_size)


def _commit_size(body: dict[str, Any]) -> int:
    # Near enough the JSON: the base64 boxes dominate, each blob id adds its 32 hex and quotes.
    boxes = sum(len(value) for value in body.values() if isinstance(value, str))
    return boxes + 40 * len(body.get("blob_ids", ()))


class Batches(Generic[Item, Result]):
    """Small files of every study, sent many to a request.

    A batch goes when it is full, or when a study that has items in it asks for a flush
    because it has no more files to add. Each item's result (its manifest entry) comes back
    through the future that :meth:`add` returned.
    """

    def __init__(
        self,
        group: asyncio.TaskGroup,
        send: Callable[[list[Item]], Awaitable[list[Result]]],
        *,
        max_items: int,
        max_bytes: int,
        before_send: Callable[[], None] = lambda: None,
    ) -> None:
        self._group = group
        self._send = send
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._before_send = before_send
        self._items: list[Item] = []
        self._futures: list[asyncio.Future[Result]] = []
        self._bytes = 0

    def add(self, item: Item, size: int) -> asyncio.Future[Result]:
        """Queue one item of ``size`` bytes; the batch before it goes first if it is full."""
        if self._items and (
            self._bytes + size > self._max_bytes or len(self._items) == self._max_items
        ):
            self.flush()
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._items.append(item)
        self._futures.append(future)
        self._bytes += size
        return future

    def flush(self) -> None:
        """Send what is queued now, full or not."""
        if not self._items:
            return
        items, futures = self._items, self._futures
        self._items, self._futures, self._bytes = [], [], 0
        self._before_send()
        self._group.create_task(self._deliver(items, futures))

    async def _deliver(self, items: list[Item], futures: list[asyncio.Future[Result]]) -> None:
        try:
            results = await self._send(items)
        except BaseException:
            _abandon(futures)
            raise
        for future, result in zip(futures, results, strict=True):
            if not future.done():
                future.set_result(result)

"""Requests that the studies of one upload share: UID-tag lookups and batches of small files.

A folder often holds many small studies (one file each, for a folder of test images or of
radiographs). Asked for study by study, each would cost a lookup and a blob request of its
own, and per-request costs, not bytes, would bound the upload. Here the studies that are
being sent at the same moment share those requests; each study still commits on its own.
"""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING, Final, Generic, TypeVar

from securepacs.client.retry import RetryPolicy, retrying

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from securepacs.client.api import ApiClient, StudySummaryView

__all__ = ("LOOKUP_TAGS", "Batches", "Lookups")

# The server answers at most this many tags in one lookup (StudyLookup.uid_tags).
LOOKUP_TAGS: Final = 1000
Item = TypeVar("Item")
Result = TypeVar("Result")


def _abandon(futures: list[asyncio.Future[Result]]) -> None:
    # The task that failed reports the error to the task group; whoever waits on these
    # futures is cancelled with it, so they carry no error of their own (none to go unread).
    for future in futures:
        future.cancel()


class Lookups:
    """Which of the account's studies holds a UID tag, asked for many tags in one request.

    While a request is in flight, the tags asked for meanwhile wait and go in the next one,
    so an idle client asks at once and a busy one asks less often, for more tags.
    """

    def __init__(self, api: ApiClient, group: asyncio.TaskGroup, policy: RetryPolicy) -> None:
        self._api = api
        self._group = group
        self._policy = policy
        self._waiting: dict[bytes, asyncio.Future[StudySummaryView | None]] = {}
        self._asking = False

    def find(self, tag: bytes) -> asyncio.Future[StudySummaryView | None]:
        """The stored study with this tag, or None once the server said there is none."""
        future = self._waiting.get(tag)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._waiting[tag] = future
        if not self._asking:
            self._asking = True
            self._group.create_task(self._ask())
        return future

    async def _ask(self) -> None:
        asked: dict[bytes, asyncio.Future[StudySummaryView | None]] = {}
        try:
            while self._waiting:
                # Studies that the scan found in the same moment go in the same request.
                await asyncio.sleep(0)
                tags = list(self._waiting)[:LOOKUP_TAGS]
                asked = {tag: self._waiting.pop(tag) for tag in tags}
                ask = functools.partial(self._api.lookup_studies, tags)
                found = await retrying(self._policy, ask)
                by_tag = {summary.uid_tag: summary for summary in found}
                for tag, future in asked.items():
                    if not future.done():  # its study may have been cancelled meanwhile
                        future.set_result(by_tag.get(tag))
                asked = {}
        except BaseException:
            _abandon([*asked.values(), *self._waiting.values()])
            self._waiting.clear()
            raise
        finally:
            self._asking = False


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

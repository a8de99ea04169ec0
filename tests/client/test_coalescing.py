"""Requests the studies of one upload share: many keyed requests and small files to a call."""

from __future__ import annotations

import asyncio

import pytest

from securepacs.client.coalescing import Batches, Coalesced

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the client's task groups are asyncio's


async def test_requests_made_during_a_call_go_together_in_the_next() -> None:
    calls: list[list[int]] = []
    release = asyncio.Event()

    async def ask(items: list[tuple[int, str]]) -> dict[int, str]:
        calls.append([key for key, _ in items])
        if len(calls) == 1:
            await release.wait()
        return {key: value.upper() for key, value in items}

    async with asyncio.TaskGroup() as group:
        coalesced = Coalesced(group, ask, max_items=3)
        first = coalesced.submit(0, "a")
        await asyncio.sleep(0.01)  # the first call is now in flight
        later = [coalesced.submit(key, chr(ord("a") + key)) for key in range(1, 6)]
        release.set()
        answers = await asyncio.gather(first, *later)
    assert answers == ["A", "B", "C", "D", "E", "F"]
    assert calls == [[0], [1, 2, 3], [4, 5]], "at most max_items a call, in order"


async def test_a_failed_call_reaches_the_task_group_and_cancels_the_waiting() -> None:
    async def ask(items: list[tuple[int, None]]) -> dict[int, None]:
        raise OSError("down")

    waiting: list[asyncio.Future[None]] = []
    with pytest.raises(ExceptionGroup) as caught:
        async with asyncio.TaskGroup() as group:
            coalesced = Coalesced(group, ask, max_items=10)
            waiting = [coalesced.submit(key, None) for key in range(3)]
    assert [type(error) for error in caught.value.exceptions] == [OSError]
    assert all(future.cancelled() for future in waiting)


async def test_a_key_waits_once() -> None:
    async def ask(items: list[tuple[int, None]]) -> dict[int, None]:
        return dict.fromkeys((key for key, _ in items), None)

    async with asyncio.TaskGroup() as group:
        coalesced = Coalesced(group, ask, max_items=10)
        coalesced.submit(1, None)
        with pytest.raises(ValueError, match="already waiting"):
            coalesced.submit(1, None)


async def test_batches_go_when_full_or_flushed_and_keep_their_order() -> None:
    sent: list[list[str]] = []
    saved = 0

    async def send(items: list[str]) -> list[str]:
        sent.append(items)
        return [item * 2 for item in items]

    def save() -> None:
        nonlocal saved
        saved += 1

    async with asyncio.TaskGroup() as group:
        batches: Batches[str, str] = Batches(
            group, send, max_items=3, max_bytes=10, before_send=save
        )
        futures = [
            batches.add(item, size) for item, size in zip("abcde", (4, 4, 4, 1, 1), strict=True)
        ]
        batches.flush()
        batches.flush()  # nothing left: no empty batch
        results = await asyncio.gather(*futures)
    assert results == ["aa", "bb", "cc", "dd", "ee"]
    assert sent == [["a", "b"], ["c", "d", "e"]], (
        "a batch goes when the next item would overflow it"
    )
    assert saved == len(sent), "the journal is written before every batch"


async def test_a_call_carries_at_most_max_bytes_but_at_least_one_value() -> None:
    calls: list[list[str]] = []

    async def ask(items: list[tuple[str, bytes]]) -> dict[str, int]:
        calls.append([key for key, _ in items])
        return {key: len(value) for key, value in items}

    async with asyncio.TaskGroup() as group:
        coalesced = Coalesced(group, ask, max_items=10, max_bytes=10, size=len)
        sizes = {"a": 4, "b": 4, "c": 4, "huge": 50, "d": 1}
        futures = [coalesced.submit(key, b"x" * size) for key, size in sizes.items()]
        answers = await asyncio.gather(*futures)
    assert answers == list(sizes.values())
    assert calls == [["a", "b"], ["c"], ["huge"], ["d"]]

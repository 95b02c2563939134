"""The group commit: alone at once, batched while a write is in flight, bounded."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Sequence

import pytest

from services.common.group_commit import GroupCommit, Overloaded


class Store:
    """Records each batch; a write waits for `gate` when one is set."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate: asyncio.Event | None = None
        self.fail_next = False

    async def write(self, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("store went away")
        return [item * 10 for item in items]


async def test_an_item_alone_is_written_at_once_and_answered_its_own_result() -> None:
    store = Store()
    commit = GroupCommit(store.write)
    assert await commit.submit(7) == 70
    assert store.batches == [[7]]


async def test_items_submitted_while_a_write_is_in_flight_go_together_next() -> None:
    store = Store()
    store.gate = asyncio.Event()
    sizes: list[int] = []
    commit = GroupCommit(store.write, on_batch=sizes.append)
    first = asyncio.create_task(commit.submit(1))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert store.batches == [[1]]
    rest = [asyncio.create_task(commit.submit(n)) for n in range(2, 7)]
    await asyncio.sleep(0)
    assert commit.pending == 5
    store.gate.set()
    assert await first == 10
    assert await asyncio.gather(*rest) == [20, 30, 40, 50, 60]
    assert store.batches == [[1], [2, 3, 4, 5, 6]]
    assert sizes == [1, 5]


async def test_a_batch_holds_at_most_max_batch_items() -> None:
    store = Store()
    commit = GroupCommit(store.write, max_batch=3, max_pending=100)
    results = await asyncio.gather(*(commit.submit(n) for n in range(8)))
    assert results == [n * 10 for n in range(8)]
    assert [len(batch) for batch in store.batches] == [3, 3, 2]


async def test_a_failed_write_fails_its_batch_only() -> None:
    store = Store()
    store.gate = asyncio.Event()
    commit = GroupCommit(store.write)
    store.fail_next = True
    first = asyncio.create_task(commit.submit(1))
    await asyncio.sleep(0)
    second = asyncio.create_task(commit.submit(2))
    await asyncio.sleep(0)
    store.gate.set()
    with pytest.raises(ConnectionError):
        await first
    assert await second == 20


async def test_an_item_is_written_even_when_its_caller_stops_waiting() -> None:
    store = Store()
    store.gate = asyncio.Event()
    commit = GroupCommit(store.write)
    first = asyncio.create_task(commit.submit(1))
    await asyncio.sleep(0)
    gone = asyncio.create_task(commit.submit(2))
    await asyncio.sleep(0)
    gone.cancel()
    store.gate.set()
    await first
    await commit.aclose()
    assert store.batches == [[1], [2]]
    assert gone.cancelled()


async def test_past_max_pending_a_submit_fails_at_once() -> None:
    store = Store()
    store.gate = asyncio.Event()
    commit = GroupCommit(store.write, max_batch=2, max_pending=2)
    waiting = [asyncio.create_task(commit.submit(n)) for n in range(2)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    # One batch of two in flight; two more may queue behind it.
    waiting += [asyncio.create_task(commit.submit(n)) for n in range(2, 4)]
    await asyncio.sleep(0)
    assert commit.pending == 2
    with pytest.raises(Overloaded):
        await commit.submit(4)
    store.gate.set()
    assert await asyncio.gather(*waiting) == [0, 10, 20, 30]


async def test_aclose_waits_for_everything_submitted() -> None:
    store = Store()
    store.gate = asyncio.Event()
    commit = GroupCommit(store.write)
    tasks = [asyncio.create_task(commit.submit(n)) for n in range(4)]
    await asyncio.sleep(0)
    closing = asyncio.create_task(commit.aclose())
    await asyncio.sleep(0.01)
    assert not closing.done()
    store.gate.set()
    await closing
    assert sorted(item for batch in store.batches for item in batch) == [0, 1, 2, 3]
    assert all(task.done() for task in tasks)


async def test_the_writer_runs_in_no_callers_context() -> None:
    caller = contextvars.ContextVar("caller", default="none")
    seen: list[str] = []

    async def write(items: Sequence[int]) -> list[int]:
        seen.append(caller.get())
        return list(items)

    commit = GroupCommit(write)
    caller.set("request-a")
    assert await commit.submit(1) == 1
    assert seen == ["none"]


def test_bounds_must_make_sense() -> None:
    with pytest.raises(ValueError):
        GroupCommit(Store().write, max_batch=0)
    with pytest.raises(ValueError):
        GroupCommit(Store().write, max_batch=10, max_pending=5)

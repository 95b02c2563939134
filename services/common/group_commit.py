"""Group commit: many callers' writes carried by one call to a store.

A caller submits its item and awaits its own result. When nothing is being written,
the item goes at once (on the event loop's next turn, with whatever was submitted in
the same turn); while a write is in flight, the items submitted meanwhile wait for it
to finish and then go together, up to `max_batch` at a time. At low rates every item is
written alone and as soon as before; at high rates one round trip carries many, which
is where the per-call cost (a Redis round trip, its parsing) stops being paid per item.

An item is written even when its caller stops waiting (a cancelled request's usage was
still spent). What waits is bounded: past `max_pending` queued items a submit fails at
once with `Overloaded` instead of queueing behind a store that does not answer.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class Overloaded(Exception):
    """More items are waiting than the group commit holds."""


class GroupCommit(Generic[Item, Result]):
    def __init__(
        self,
        write: Callable[[Sequence[Item]], Awaitable[Sequence[Result]]],
        *,
        max_batch: int = 64,
        max_pending: int = 10_000,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        """`write` stores a batch and answers one result per item, in order; an
        exception it raises is every item's of that batch. `on_batch` sees each batch's
        size (for a metric)."""
        if max_batch < 1 or max_pending < max_batch:
            raise ValueError("need 1 <= max_batch <= max_pending")
        self._write = write
        self._max_batch = max_batch
        self._max_pending = max_pending
        self._on_batch = on_batch
        self._queue: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writer: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def submit(self, item: Item) -> Result:
        if len(self._queue) >= self._max_pending:
            raise Overloaded(f"{len(self._queue)} writes are already waiting")
        done: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append((item, done))
        if self._writer is None:
            # A context of its own: the batch is no one request's (its logs and spans
            # must not carry the request that happened to start it).
            self._writer = asyncio.create_task(self._drain(), context=contextvars.Context())
        return await done

    async def aclose(self) -> None:
        """Waits until everything submitted so far is written."""
        while self._writer is not None:
            await asyncio.shield(self._writer)

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                if self._on_batch is not None:
                    self._on_batch(len(batch))
                try:
                    results = await self._write([item for item, _ in batch])
                    if len(results) != len(batch):
                        raise RuntimeError(f"{len(results)} results for {len(batch)} writes")
                except Exception as error:
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(error)
                    continue
                for (_, done), result in zip(batch, results, strict=False):
                    if not done.done():
                        done.set_result(result)
        finally:
            self._writer = None
            # Cancelled (the loop is closing): nothing will write what is left.
            for _, done in self._queue:
                if not done.done():
                    done.cancel()
            self._queue.clear()

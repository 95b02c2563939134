"""Periodic cleanup of the shared indexes, and the active-sessions gauge.

Redis expires a session's own keys; the index members that name it stay until a sweep
removes them. Every replica sweeps; the work is idempotent, so overlapping sweeps of
two replicas are harmless.
"""

from __future__ import annotations

import asyncio
import logging

from services.common.errors import Unavailable
from services.common.tasks import cancel_and_wait
from services.session.metrics import ACTIVE_SESSIONS
from services.session.store import SessionStore

log = logging.getLogger("llmgw.session.sweeper")

SWEEP_INTERVAL_SECONDS = 30.0
# Expired sessions examined per script call, so one call never blocks Redis for long.
SWEEP_BATCH = 500
# Calls per sweep at most; the rest waits for the next sweep.
MAX_BATCHES = 20


def _report_failure(task: asyncio.Task[None]) -> None:
    """A sweeper that stops on a bug must say so: the indexes would grow unnoticed."""
    if not task.cancelled() and task.exception() is not None:
        log.error("the session sweeper stopped", exc_info=task.exception())


class Sweeper:
    def __init__(self, store: SessionStore, interval: float = SWEEP_INTERVAL_SECONDS) -> None:
        self._store = store
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def sweep(self) -> int:
        """One sweep; returns the number of index entries of expired sessions removed."""
        removed = 0
        for _ in range(MAX_BATCHES):
            result = await self._store.sweep(SWEEP_BATCH)
            removed += result.removed
            ACTIVE_SESSIONS.set(result.live)
            if result.removed < SWEEP_BATCH:
                break
        return removed

    async def _loop(self) -> None:
        while True:
            try:
                await self.sweep()
            except Unavailable:
                # Readiness reports the outage; the next sweep catches up.
                log.debug("sweep skipped: the session store is unavailable")
            await asyncio.sleep(self._interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="session-sweeper")
        self._task.add_done_callback(_report_failure)

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

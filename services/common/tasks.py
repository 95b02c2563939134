"""Stopping a background task for good.

A background loop that tolerates Redis failures catches TimeoutError; in Python 3.11 a
cancellation that races a timeout inside a client library can reach the loop as that
TimeoutError, and the loop then goes on as if nothing happened. `cancel_and_wait`
cancels again until the task has really ended, so a stop never waits forever.
"""

from __future__ import annotations

import asyncio
from typing import Any

RECANCEL_SECONDS = 0.5


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancels `task` and returns once it has ended (its outcome is not raised)."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=RECANCEL_SECONDS)
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it as never retrieved

"""cancel_and_wait ends a task even when the task swallows a cancellation."""

from __future__ import annotations

import asyncio

from services.common.tasks import cancel_and_wait


async def test_a_task_that_swallows_one_cancellation_still_ends() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                # What a timeout racing the cancel looks like to a loop that catches
                # TimeoutError: the loop carries on.
                swallowed += 1
                if swallowed > 1:
                    raise

    task = asyncio.get_running_loop().create_task(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait(task), timeout=10)
    assert task.cancelled()
    assert swallowed == 2


async def test_a_finished_or_failing_task_is_left_as_it_ended() -> None:
    async def fails() -> None:
        raise RuntimeError("boom")

    task = asyncio.get_running_loop().create_task(fails())
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert isinstance(task.exception(), RuntimeError)

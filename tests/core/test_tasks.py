"""Ending a component's own task (fmn.core.tasks.cancel_and_wait)."""

from __future__ import annotations

import asyncio

import pytest

from fmn.core.tasks import cancel_and_wait


async def _slow_to_end() -> None:
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        await asyncio.sleep(0.2)  # cleans up a little before it ends
        raise


async def test_the_task_is_cancelled_and_its_cancellation_not_raised() -> None:
    task = asyncio.create_task(_slow_to_end())
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert task.cancelled()


async def test_an_error_the_task_ended_with_is_raised() -> None:
    async def fails() -> None:
        raise LookupError("gone")

    task = asyncio.create_task(fails())
    await asyncio.sleep(0)
    with pytest.raises(LookupError):
        await cancel_and_wait(task)


async def test_a_caller_cleaning_up_after_its_stop_ends_its_tasks_and_goes_on() -> None:
    """A component stopped earlier ends its tasks in its clean-up, all of them."""
    ended: list[bool] = []

    async def component() -> None:
        first = asyncio.create_task(_slow_to_end())
        second = asyncio.create_task(_slow_to_end())
        try:
            await asyncio.sleep(3600)
        finally:
            await cancel_and_wait(first)
            await cancel_and_wait(second)
            ended.extend((first.cancelled(), second.cancelled()))

    caller = asyncio.create_task(component())
    await asyncio.sleep(0.05)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert ended == [True, True]

"""Ending an asyncio task that a component started for itself."""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel `task` (if any) and wait until it has ended; its cancellation is not raised here,
    an error it ended with is, and so is a cancellation of the caller meanwhile."""
    if task is None:
        return
    current = asyncio.current_task()
    # A caller already being stopped (cleaning up) counts its stop from before: only a new one
    # is its own to raise.
    stops = current.cancelling() if current is not None else 0
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        if current is not None and current.cancelling() > stops:
            raise

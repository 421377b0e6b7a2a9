"""Request batching: calls made while a round trip is in flight share the next one.

Used where many concurrent callers each want a small answer from the same server: the API's
rules-list version checks (one PostgreSQL statement for many requests) and the senders'
idempotency checks and marks (one Redis request for many sends). Each round trip starts after
every call it answers was made, so an answer is never older than its question.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from fmn.core.tasks import cancel_and_wait

K = TypeVar("K")
V = TypeVar("V")


class Coalescer(Generic[K, V]):
    """`await coalescer(keys)` answers `run(all keys waiting)`'s values for these keys, in
    order. A failed round trip raises its exception in every call it was answering."""

    def __init__(self, run: Callable[[list[K]], Awaitable[list[V]]], name: str = "batch") -> None:
        self._run = run
        self._name = name
        self._pending: list[tuple[list[K], asyncio.Future[list[V]]]] = []
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, keys: list[K]) -> list[V]:
        future: asyncio.Future[list[V]] = asyncio.get_running_loop().create_future()
        self._pending.append((keys, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name=self._name)
        return await future

    async def aclose(self) -> None:
        """Stop: the round trip in flight is cancelled, and so are the calls still waiting."""
        await cancel_and_wait(self._task)
        self._task = None
        for _, future in self._pending:
            future.cancel()
        self._pending = []

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                results = await self._run([key for keys, _ in batch for key in keys])
            except asyncio.CancelledError:
                for _, future in batch:
                    future.cancel()
                raise
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            start = 0
            for keys, future in batch:
                if not future.done():
                    future.set_result(results[start : start + len(keys)])
                start += len(keys)

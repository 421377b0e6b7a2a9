"""Who may start a rule preview: one running preview per user, across the API's processes
(a lock in the shared cache, and in memory for this process when the cache is down), and
`preview_concurrency` previews at once in this process. A preview that cannot start is
refused with 429 and a Retry-After rather than queued past its time budget."""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from cashews import Cache

from fmn.api.limits import RateLimited

LOCK_PREFIX = "fmn:api:preview:"
# The shared lock outlives the budget by this many seconds (a process that dies holding it
# blocks its user's previews no longer than budget + margin).
LOCK_MARGIN = 5


class PreviewGate:
    def __init__(self, cache: Cache, concurrency: int, budget: float) -> None:
        self.cache = cache
        self.budget = budget
        self._slots = asyncio.Semaphore(concurrency)
        self._running: set[str] = set()

    @asynccontextmanager
    async def enter(self, user: str, deadline: float) -> AsyncIterator[None]:
        """Hold the user's preview lock and a slot of this process until the block ends."""
        retry_after = math.ceil(self.budget) + 1
        if user in self._running:
            raise RateLimited(retry_after, "A preview of yours is already running")
        self._running.add(user)
        try:
            key, token = LOCK_PREFIX + user, secrets.token_hex(8)
            held = await self.cache.set_lock(key, token, expire=retry_after + LOCK_MARGIN)
            # cashews answers False when the cache is down too: only a lock it can show is
            # someone else's.
            if not held and await self.cache.is_locked(key):
                raise RateLimited(retry_after, "A preview of yours is already running")
            try:
                async with self._slot(deadline, retry_after):
                    yield
            finally:
                if held:
                    await self.cache.unlock(key, token)
        finally:
            self._running.discard(user)

    @asynccontextmanager
    async def _slot(self, deadline: float, retry_after: int) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                await self._slots.acquire()
        except TimeoutError:
            raise RateLimited(retry_after, "Too many previews are running") from None
        try:
            yield
        finally:
            self._slots.release()

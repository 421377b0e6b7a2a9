"""A Directory cached on the shared cache (cashews: "mem://" or Redis), shared by the consumer
and the API, and invalidated from bus messages.

Keys are ``<prefix>:<look-up>:<argument>``, so a change deletes exact keys; searches, which any
user change can alter, live under a generation number that a change bumps. Answers are cached,
including "no such user" (None) and empty lists; failures (DirectoryUnavailable) never are.
A cache that is down is a cache miss (cashews' Redis backend swallows its errors).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from cashews import Cache
from prometheus_client import Counter

from fmn.directory.base import Directory
from fmn.directory.changes import DirectoryChange, directory_change

# Directory look-ups by outcome: the cache hit rate is hit / (hit + miss).
LOOKUPS = Counter("fmn_directory_lookups_total", "Directory look-ups", ["lookup", "outcome"])

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "fmn:directory:v1"
USER_LOOKUPS = ("get_user", "get_user_groups", "get_user_projects")
GROUP_LOOKUPS = ("get_group_members", "get_group_sponsors", "get_group_projects")
PROJECT_LOOKUPS = ("get_project_users", "get_project_groups")


def make_cache(url: str) -> Cache:
    """A cashews cache of its own (the global one may be set up differently by others)."""
    cache = Cache(name="fmn-directory")
    cache.setup(url)
    return cache


class CachedDirectory:
    """Any Directory, with its answers kept `ttl` seconds in `cache`."""

    def __init__(
        self,
        inner: Directory,
        cache: Cache,
        *,
        ttl: int,
        prefix: str = DEFAULT_PREFIX,
        distgit_url: str | None = None,
    ) -> None:
        self.inner = inner
        self.cache = cache
        self.ttl = ttl
        self.prefix = prefix
        self.distgit_url = distgit_url
        # Concurrent look-ups of one key share one request (index rebuilds ask a lot at once).
        self._inflight: dict[str, asyncio.Future[Any]] = {}
        # Bumped by every invalidation: a load that overlapped one does not store its answer.
        self._epoch = 0

    async def aclose(self) -> None:
        close = getattr(self.inner, "aclose", None)
        if close is not None:
            await close()
        await self.cache.close()

    def key(self, lookup: str, argument: str) -> str:
        return f"{self.prefix}:{lookup}:{argument}"

    async def _cached(self, lookup: str, argument: str, key: str | None = None) -> Any:
        key = key or self.key(lookup, argument)
        future = self._inflight.get(key)
        if future is None:
            future = asyncio.ensure_future(self._get_or_load(lookup, argument, key))
            self._inflight[key] = future
            future.add_done_callback(lambda f: self._forget(key, f))
        return await asyncio.shield(future)

    async def _get_or_load(self, lookup: str, argument: str, key: str) -> Any:
        hit = await self.cache.get(key)
        if isinstance(hit, dict) and "v" in hit:
            LOOKUPS.labels(lookup, "hit").inc()
            return hit["v"]
        LOOKUPS.labels(lookup, "miss").inc()
        epoch = self._epoch
        load: Callable[[str], Awaitable[Any]] = getattr(self.inner, lookup)
        value = await load(argument)
        if epoch == self._epoch:
            await self.cache.set(key, {"v": value}, expire=self.ttl)
        return value

    def _forget(self, key: str, future: asyncio.Future[Any]) -> None:
        if self._inflight.get(key) is future:
            del self._inflight[key]
        if not future.cancelled():
            future.exception()  # retrieved by the awaiting callers; silence asyncio's warning

    async def get_user(self, username: str) -> dict[str, Any] | None:
        user: dict[str, Any] | None = await self._cached("get_user", username)
        # A copy: the in-memory backend hands out the cached object itself.
        return dict(user) if user is not None else None

    async def get_user_groups(self, username: str) -> list[str]:
        return list(await self._cached("get_user_groups", username))

    async def get_group_members(self, group: str) -> list[str]:
        return list(await self._cached("get_group_members", group))

    async def get_group_sponsors(self, group: str) -> list[str]:
        return list(await self._cached("get_group_sponsors", group))

    async def search_users(self, pattern: str) -> list[str]:
        generation = await self.cache.get(self._search_generation_key) or 0
        key = self.key("search_users", f"g{generation}:{pattern}")
        return list(await self._cached("search_users", pattern, key))

    async def get_project_users(self, path: str) -> list[str]:
        return list(await self._cached("get_project_users", path))

    async def get_project_groups(self, path: str) -> list[str]:
        return list(await self._cached("get_project_groups", path))

    async def get_user_projects(self, username: str) -> list[str]:
        return list(await self._cached("get_user_projects", username))

    async def get_group_projects(self, group: str) -> list[str]:
        return list(await self._cached("get_group_projects", group))

    async def search_projects(self, pattern: str) -> list[str]:
        return list(await self._cached("search_projects", pattern))

    @property
    def _search_generation_key(self) -> str:
        return f"{self.prefix}:search_users:generation"

    async def invalidate(self, change: DirectoryChange) -> None:
        """Forget every cached answer that `change` may have made wrong."""
        if not change:
            return
        self._epoch += 1
        keys = [
            *(self.key(lookup, user) for user in change.users for lookup in USER_LOOKUPS),
            *(self.key(lookup, group) for group in change.groups for lookup in GROUP_LOOKUPS),
            *(self.key(lookup, path) for path in change.projects for lookup in PROJECT_LOOKUPS),
        ]
        for key in keys:
            self._inflight.pop(key, None)
        await asyncio.gather(*(self.cache.delete(key) for key in keys))
        if change.users:
            await self.cache.incr(self._search_generation_key)
        log.info("directory cache invalidated: %s", change)

    async def invalidate_all(self) -> None:
        """Forget every cached answer: for a process that may have missed changes (its
        consumer's control queue went with a lost connection). One pass over the cache's keys."""
        self._epoch += 1
        self._inflight.clear()
        generation = self._search_generation_key
        keys: list[str] = []
        async for key in self.cache.scan(f"{self.prefix}:*", batch_size=1000):
            if key != generation:  # bumped instead: a search stored meanwhile is not reused
                keys.append(key)
            if len(keys) >= 1000:
                await self.cache.delete_many(*keys)
                keys.clear()
        if keys:
            await self.cache.delete_many(*keys)
        await self.cache.incr(generation)
        log.info("directory cache: every cached answer forgotten")

    async def invalidate_on_message(self, topic: str, body: dict[str, Any]) -> DirectoryChange:
        """Invalidate what a bus message changes, and say what that was."""
        change = directory_change(topic, body, distgit_url=self.distgit_url)
        await self.invalidate(change)
        return change

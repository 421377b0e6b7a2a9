"""The senders' durable state, in Redis: which notifications were sent (idempotency keys),
which are held for a digest and when each held batch is due, and small per-protocol facts (the
Matrix room of each recipient). An in-memory variant serves the embedded default, which keeps
nothing across restarts anyway (its broker is in-process too).
"""

from __future__ import annotations

import abc
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from fmn.core.batching import Coalescer
from fmn.sendqueue.workitem import WorkItem

PREFIX = "fmn:senders:"


@dataclass(frozen=True)
class HeldItem:
    item: WorkItem
    reason: str
    held_at: float

    def to_json(self) -> str:
        return json.dumps(
            {"item": self.item.model_dump(mode="json"), "reason": self.reason, "at": self.held_at}
        )

    @classmethod
    def from_json(cls, data: str | bytes) -> HeldItem:
        raw = json.loads(data)
        return cls(WorkItem.model_validate(raw["item"]), raw["reason"], raw["at"])


class SenderState(abc.ABC):
    @abc.abstractmethod
    async def sent_among(self, keys: list[str]) -> set[str]:
        """Which of these idempotency keys were sent already."""

    @abc.abstractmethod
    async def mark_sent(self, keys: Iterable[str]) -> None: ...

    @abc.abstractmethod
    async def hold(self, protocol: str, held: HeldItem, due: float) -> None:
        """Keep an item for a later digest of its destination. The destination's due time is the
        earliest asked for, so a continuing flood cannot postpone its digest forever."""

    @abc.abstractmethod
    async def due(self, protocol: str, now: float) -> list[str]:
        """Destinations whose held items are due."""

    @abc.abstractmethod
    async def held(self, protocol: str, address: str) -> list[HeldItem]: ...

    @abc.abstractmethod
    async def held_count(self, protocol: str, address: str) -> int: ...

    @abc.abstractmethod
    async def release(self, protocol: str, address: str, keys: list[str]) -> None:
        """Forget held items that were delivered (marking them sent first)."""

    @abc.abstractmethod
    async def reschedule(self, protocol: str, address: str, due: float) -> None: ...

    @abc.abstractmethod
    async def lock(self, name: str, ttl: float) -> bool:
        """A short lease, so that two email senders do not flush the same digest."""

    @abc.abstractmethod
    async def unlock(self, name: str) -> None: ...

    @abc.abstractmethod
    async def lease(self, name: str, owner: str, ttl: float) -> bool:
        """Take or renew a lease held by `owner`; False while someone else holds it."""

    @abc.abstractmethod
    async def release_lease(self, name: str, owner: str) -> None: ...

    @abc.abstractmethod
    async def get_value(self, name: str) -> str | None: ...

    @abc.abstractmethod
    async def set_value(self, name: str, value: str) -> None: ...

    async def close(self) -> None:
        return None


def _held_key(protocol: str, address: str) -> str:
    return f"{PREFIX}held:{protocol}:{address}"


def _due_key(protocol: str) -> str:
    return f"{PREFIX}due:{protocol}"


def _sent_key(key: str) -> str:
    return f"{PREFIX}sent:{key}"


class RedisSenderState(SenderState):
    def __init__(self, client: aioredis.Redis, sent_ttl: int) -> None:
        self.client = client
        self.sent_ttl = sent_ttl
        self._get_sent: Coalescer[str, Any] = Coalescer(self._mget_sent, name="sent keys read")
        self._set_sent: Coalescer[str, Any] = Coalescer(self._mset_sent, name="sent keys marked")

    @classmethod
    def from_url(cls, url: str, sent_ttl: int) -> RedisSenderState:
        return cls(aioredis.from_url(url), sent_ttl)

    async def close(self) -> None:
        await self.client.aclose()

    async def sent_among(self, keys: list[str]) -> set[str]:
        if not keys:
            return set()
        values = await self._get_sent(keys)
        return {k for k, v in zip(keys, values, strict=True) if v is not None}

    async def mark_sent(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        if keys:
            await self._set_sent(keys)

    async def _mget_sent(self, keys: list[str]) -> list[Any]:
        return list(await self.client.mget([_sent_key(k) for k in keys]))

    async def _mset_sent(self, keys: list[str]) -> list[Any]:
        async with self.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.set(_sent_key(key), b"1", nx=True, ex=self.sent_ttl)
            return list(await pipe.execute())

    async def hold(self, protocol: str, held: HeldItem, due: float) -> None:
        address = held.item.address
        async with self.client.pipeline(transaction=True) as pipe:
            # HSETNX: a redelivered item is held once.
            pipe.hsetnx(_held_key(protocol, address), held.item.key, held.to_json())
            pipe.zadd(_due_key(protocol), {address: due}, lt=True)
            await pipe.execute()

    async def due(self, protocol: str, now: float) -> list[str]:
        members = await self.client.zrangebyscore(_due_key(protocol), "-inf", now)
        return [m.decode() if isinstance(m, bytes) else str(m) for m in members]

    async def held(self, protocol: str, address: str) -> list[HeldItem]:
        values = await self.client.hvals(_held_key(protocol, address))
        return [HeldItem.from_json(v) for v in values]

    async def held_count(self, protocol: str, address: str) -> int:
        return int(await self.client.hlen(_held_key(protocol, address)))

    async def release(self, protocol: str, address: str, keys: list[str]) -> None:
        await self.mark_sent(keys)
        held_key = _held_key(protocol, address)
        if keys:
            await self.client.hdel(held_key, *keys)
        # Atomically, so an item held meanwhile keeps its schedule.
        await self.client.eval(_DROP_IF_EMPTY, 2, held_key, _due_key(protocol), address)  # type: ignore[misc]

    async def reschedule(self, protocol: str, address: str, due: float) -> None:
        await self.client.zadd(_due_key(protocol), {address: due})

    async def lock(self, name: str, ttl: float) -> bool:
        return bool(
            await self.client.set(f"{PREFIX}lock:{name}", b"1", nx=True, px=int(ttl * 1000))
        )

    async def unlock(self, name: str) -> None:
        await self.client.delete(f"{PREFIX}lock:{name}")

    async def lease(self, name: str, owner: str, ttl: float) -> bool:
        key = f"{PREFIX}lease:{name}"
        return bool(await self.client.eval(_LEASE, 1, key, owner, int(ttl * 1000)))  # type: ignore[misc]

    async def release_lease(self, name: str, owner: str) -> None:
        await self.client.eval(_RELEASE, 1, f"{PREFIX}lease:{name}", owner)  # type: ignore[misc]

    async def get_value(self, name: str) -> str | None:
        value = await self.client.get(f"{PREFIX}{name}")
        return value.decode() if isinstance(value, bytes) else value

    async def set_value(self, name: str, value: str) -> None:
        await self.client.set(f"{PREFIX}{name}", value)


_LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""

_DROP_IF_EMPTY = """
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('ZREM', KEYS[2], ARGV[1]) end
return 0
"""


class MemorySenderState(SenderState):
    def __init__(self) -> None:
        self._sent: dict[str, float] = {}
        self._held: dict[tuple[str, str], dict[str, HeldItem]] = {}
        self._due: dict[str, dict[str, float]] = {}
        self._locks: dict[str, float] = {}
        self._values: dict[str, str] = {}
        self._leases: dict[str, tuple[str, float]] = {}

    async def sent_among(self, keys: list[str]) -> set[str]:
        return {k for k in keys if k in self._sent}

    async def mark_sent(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._sent.setdefault(key, time.time())

    async def hold(self, protocol: str, held: HeldItem, due: float) -> None:
        address = held.item.address
        self._held.setdefault((protocol, address), {}).setdefault(held.item.key, held)
        schedule = self._due.setdefault(protocol, {})
        schedule[address] = min(due, schedule.get(address, due))

    async def due(self, protocol: str, now: float) -> list[str]:
        return [a for a, t in self._due.get(protocol, {}).items() if t <= now]

    async def held(self, protocol: str, address: str) -> list[HeldItem]:
        return list(self._held.get((protocol, address), {}).values())

    async def held_count(self, protocol: str, address: str) -> int:
        return len(self._held.get((protocol, address), {}))

    async def release(self, protocol: str, address: str, keys: list[str]) -> None:
        await self.mark_sent(keys)
        items = self._held.get((protocol, address), {})
        for key in keys:
            items.pop(key, None)
        if not items:
            self._held.pop((protocol, address), None)
            self._due.get(protocol, {}).pop(address, None)

    async def reschedule(self, protocol: str, address: str, due: float) -> None:
        self._due.setdefault(protocol, {})[address] = due

    async def lock(self, name: str, ttl: float) -> bool:
        now = time.monotonic()
        if self._locks.get(name, 0) > now:
            return False
        self._locks[name] = now + ttl
        return True

    async def unlock(self, name: str) -> None:
        self._locks.pop(name, None)

    async def lease(self, name: str, owner: str, ttl: float) -> bool:
        holder, until = self._leases.get(name, (owner, 0.0))
        now = time.monotonic()
        if holder != owner and until > now:
            return False
        self._leases[name] = (owner, now + ttl)
        return True

    async def release_lease(self, name: str, owner: str) -> None:
        if self._leases.get(name, (None, 0.0))[0] == owner:
            del self._leases[name]

    async def get_value(self, name: str) -> str | None:
        return self._values.get(name)

    async def set_value(self, name: str, value: str) -> None:
        self._values[name] = value


def make_state(url: str, sent_ttl: int) -> SenderState:
    if url.startswith("mem://"):
        return MemorySenderState()
    return RedisSenderState.from_url(url, sent_ttl)

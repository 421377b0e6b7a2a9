"""What a sender knows and keeps of each delivery, beside its loop (fmn.senders.loop):

- the user's preferences and what they decide: send now, or hold for a digest (digest mode,
  quiet hours, mute). The sender reads these settings itself (cached briefly) rather than
  taking them from the work item, so that a change, such as ending a mute early, also applies
  to notifications already held (`PreferenceReader`, `hold_for`);
- the durable state, in Redis: which notifications were sent (idempotency keys), which are held
  for a digest and when each held batch is due, and small per-protocol facts (the Matrix room
  of each recipient). An in-memory variant serves the embedded default, which keeps nothing
  across restarts anyway (its broker is in-process too) (`SenderState`);
- what this process settled lately (`Memory`), so that a redelivery sends or passes on nothing
  twice;
- the delivery log: every attempt and delivery, written to the `deliveries` table in batches
  (one INSERT per flush interval rather than one per notification) (`DeliveryLog`).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import redis.asyncio as aioredis
from cachetools import FIFOCache
from prometheus_client import Counter
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fmn.core.batching import Coalescer
from fmn.db.models import Delivery, DeliveryStatus, DigestMode, User, UserSettings
from fmn.sendqueue.workitem import WorkItem, attempt_of
from fmn.transport.base import Delivery as BrokerDelivery

log = logging.getLogger(__name__)

# ---- preferences: send now or hold ------------------------------------------------------------


@dataclass(frozen=True)
class Preferences:
    digest_mode: DigestMode = DigestMode.NONE
    quiet_start: dt.time | None = None
    quiet_end: dt.time | None = None
    timezone: str = "UTC"
    muted_until: dt.datetime | None = None


DEFAULT = Preferences()


@dataclass(frozen=True)
class Hold:
    reason: str  # "muted", "quiet-hours", "digest-hourly", "digest-daily"
    until: dt.datetime


def _zone(name: str) -> dt.tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def quiet_hours_end(prefs: Preferences, now: dt.datetime) -> dt.datetime | None:
    """The end of the quiet period `now` falls in, or None outside quiet hours."""
    start, end = prefs.quiet_start, prefs.quiet_end
    if start is None or end is None or start == end:
        return None
    local = now.astimezone(_zone(prefs.timezone))
    t = local.time().replace(tzinfo=None)
    if start < end:
        inside = start <= t < end
    else:  # spans midnight, e.g. 22:00-07:00
        inside = t >= start or t < end
    if not inside:
        return None
    candidate = dt.datetime.combine(local.date(), end, tzinfo=local.tzinfo)
    if candidate <= local:
        candidate += dt.timedelta(days=1)
    return candidate.astimezone(dt.UTC)


def next_digest_time(prefs: Preferences, now: dt.datetime, daily_hour: int) -> dt.datetime | None:
    if prefs.digest_mode == DigestMode.HOURLY:
        top = now.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
        return top + dt.timedelta(hours=1)
    if prefs.digest_mode == DigestMode.DAILY:
        local = now.astimezone(_zone(prefs.timezone))
        candidate = local.replace(hour=daily_hour, minute=0, second=0, microsecond=0)
        if candidate <= local:
            candidate += dt.timedelta(days=1)
        return candidate.astimezone(dt.UTC)
    return None


def hold_for(prefs: Preferences, now: dt.datetime, daily_hour: int) -> Hold | None:
    """Why and until when a notification arriving `now` waits; None to send it now.

    A muted or quiet user's notifications wait until the period ends; with a digest mode
    they then wait for the next digest."""
    if prefs.muted_until is not None and _aware(prefs.muted_until) > now:
        return Hold("muted", _aware(prefs.muted_until))
    quiet_end = quiet_hours_end(prefs, now)
    if quiet_end is not None:
        return Hold("quiet-hours", quiet_end)
    digest = next_digest_time(prefs, now, daily_hour)
    if digest is not None:
        return Hold(f"digest-{prefs.digest_mode.value}", digest)
    return None


def still_waiting(prefs: Preferences, now: dt.datetime) -> dt.datetime | None:
    """For held items that fell due: a later time if the user is (again) muted or quiet."""
    if prefs.muted_until is not None and _aware(prefs.muted_until) > now:
        return _aware(prefs.muted_until)
    return quiet_hours_end(prefs, now)


class PreferenceReader:
    """Users' settings from the database. Only users who changed something have a row, so the
    whole table is read in one query and re-read after `ttl` seconds: no query per notification
    or per user, however many users there are."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession] | None, ttl: float) -> None:
        self.sessionmaker = sessionmaker
        self.ttl = ttl
        self._prefs: dict[str, Preferences] = {}
        self._fresh_until = -1.0
        self._lock = asyncio.Lock()

    async def get(self, user: str) -> Preferences:
        if time.monotonic() >= self._fresh_until:
            async with self._lock:
                if time.monotonic() >= self._fresh_until:
                    await self._load()
        return self._prefs.get(user, DEFAULT)

    async def _load(self) -> None:
        if self.sessionmaker is None:
            self._fresh_until = float("inf")
            return
        try:
            async with self.sessionmaker() as session:
                rows = (await session.execute(select(User.name, UserSettings).join(User))).all()
        except Exception:
            # Keep the last known settings (or deliver now) rather than stall; retry soon.
            log.exception("could not read user settings; keeping the last known ones")
            self._fresh_until = time.monotonic() + min(self.ttl, 5.0)
            return
        self._prefs = {
            name: Preferences(
                digest_mode=row.digest_mode,
                quiet_start=row.quiet_hours_start,
                quiet_end=row.quiet_hours_end,
                timezone=row.timezone,
                muted_until=row.muted_until,
            )
            for name, row in rows
        }
        self._fresh_until = time.monotonic() + self.ttl


# ---- the durable state --------------------------------------------------------------------------

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

    @abc.abstractmethod
    async def delete_value(self, name: str) -> None: ...

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

    async def delete_value(self, name: str) -> None:
        await self.client.delete(f"{PREFIX}{name}")


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

    async def delete_value(self, name: str) -> None:
        self._values.pop(name, None)


def make_state(url: str, sent_ttl: int) -> SenderState:
    if url.startswith("mem://"):
        return MemorySenderState()
    return RedisSenderState.from_url(url, sent_ttl)


# ---- what this process settled lately -----------------------------------------------------------

# How many sent keys and passed-on items a sender remembers: far more than it holds unacked.
MEMORY_SIZE = 10_000


class Memory:
    """What this sender process settled lately, oldest forgotten first.

    Keys sent here: a second copy of an item that arrives while the first is being marked sent
    (its Redis mark not written yet) is not sent. Items passed on to a retry or dead-letter
    queue (body and attempt): when a message of several items comes back because another of
    its items was given back, these are not passed on a second time."""

    def __init__(self, size: int = MEMORY_SIZE) -> None:
        self._sent: FIFOCache[str, None] = FIFOCache(size)
        self._passed_on: FIFOCache[tuple[int, int], None] = FIFOCache(size)

    def sent(self, key: str) -> None:
        self._sent[key] = None

    def was_sent(self, key: str) -> bool:
        return key in self._sent

    def passed_on(self, delivery: BrokerDelivery) -> None:
        self._passed_on[_identity(delivery)] = None

    def was_passed_on(self, delivery: BrokerDelivery) -> bool:
        # Only a redelivered message can hold an item this process passed on.
        return delivery.redelivered and _identity(delivery) in self._passed_on


def _identity(delivery: BrokerDelivery) -> tuple[int, int]:
    return hash(delivery.body), attempt_of(delivery)


# ---- the delivery log ---------------------------------------------------------------------------

# Rows kept while the database is unreachable; beyond this the oldest are dropped (the log is a
# history, not the source of truth for delivery, so it must never block sending).
MAX_BUFFER = 100_000


OUTCOMES = Counter(
    "fmn_sender_deliveries_total",
    "Delivery attempts and outcomes by protocol (sent, failed and retried, dead, held, digested)",
    ["protocol", "status"],
)


class DeliveryLog:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession] | None, flush_interval: float
    ) -> None:
        self.sessionmaker = sessionmaker
        self.flush_interval = flush_interval
        self._rows: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False

    def record(
        self,
        item: WorkItem,
        status: DeliveryStatus,
        attempt: int = 1,
        detail: str | None = None,
    ) -> None:
        # Every outcome passes here: sent, failed (will retry), dead, held, digested.
        OUTCOMES.labels(item.protocol, str(status)).inc()
        if self.sessionmaker is None:
            return
        self._rows.append(
            {
                "created_at": dt.datetime.now(dt.UTC),
                "user_name": item.user,
                "idempotency_key": item.key[:512],
                "message_id": item.message.id[:255],
                "topic": item.message.topic,
                "protocol": item.protocol,
                "address": item.address,
                "rule_ids": [r.id for r in item.rules],
                "status": status,
                "attempt": attempt,
                "detail": detail,
                "summary": item.message.summary,
            }
        )
        if len(self._rows) > MAX_BUFFER:
            del self._rows[: len(self._rows) - MAX_BUFFER]

    def start(self) -> None:
        if self.sessionmaker is not None and self._task is None:
            self._task = asyncio.create_task(self._run(), name="delivery-log")

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_interval)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        if not self._rows or self.sessionmaker is None:
            return
        rows, self._rows = self._rows, []
        try:
            async with self.sessionmaker() as session, session.begin():
                await session.execute(insert(Delivery), rows)
        except Exception:
            log.exception("could not write %d delivery-log rows; will retry", len(rows))
            self._rows[:0] = rows

    async def close(self) -> None:
        # Not cancelled: a flush cut off mid-query would leave its connection unusable.
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()

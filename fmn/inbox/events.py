"""News of a user's inbox for the API's live streams, across API replicas.

The web sender publishes "user U has new entries" after its transaction commits, and the API
publishes "user U's read state changed" after its own; each API process relays what it hears to
the streams it holds open for that user. A stream is woken, not fed: it reads what it has not
sent yet from the database (entries after the last id it sent), so a lost or merged wake-up
loses nothing, and a slow client holds no queue of events.

Redis pub/sub (one channel; each API process subscribes once) carries the news between
processes; with the in-memory cache URL (`fmn run`, one process) a process-wide hub does.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import redis.asyncio as aioredis

from fmn.core.tasks import cancel_and_wait

log = logging.getLogger(__name__)

CHANNEL = "fmn:inbox:events"
Kind = Literal["entries", "read"]


@dataclass(frozen=True)
class Event:
    user: str
    kind: Kind

    def to_json(self) -> str:
        return json.dumps({"user": self.user, "kind": self.kind})

    @classmethod
    def from_json(cls, data: str | bytes) -> Event | None:
        try:
            raw = json.loads(data)
            kind = raw["kind"]
            if kind not in ("entries", "read") or not isinstance(raw["user"], str):
                return None
            return cls(raw["user"], kind)
        except (ValueError, KeyError, TypeError):
            return None


class Listener:
    """One open stream: woken when its user's inbox changed."""

    def __init__(self) -> None:
        self.wake = asyncio.Event()
        self.entries = False  # new entries since the stream last looked
        self.read = False  # read state changed since the stream last looked

    def notify(self, kind: Kind) -> None:
        if kind == "entries":
            self.entries = True
        else:
            self.read = True
        self.wake.set()

    async def wait(self) -> tuple[bool, bool]:
        """Until woken: (new entries?, read state changed?), and reset."""
        await self.wake.wait()
        self.wake.clear()
        news = (self.entries, self.read)
        self.entries = self.read = False
        return news


class Hub:
    """This process's open streams, by user."""

    def __init__(self) -> None:
        self._listeners: dict[str, set[Listener]] = {}

    @contextlib.contextmanager
    def listen(self, user: str) -> Iterator[Listener]:
        listener = Listener()
        self._listeners.setdefault(user, set()).add(listener)
        try:
            yield listener
        finally:
            found = self._listeners.get(user)
            if found is not None:
                found.discard(listener)
                if not found:
                    del self._listeners[user]

    def dispatch(self, event: Event) -> None:
        for listener in self._listeners.get(event.user, ()):
            listener.notify(event.kind)

    def wake_all(self) -> None:
        """After news may have been lost: every stream looks for itself."""
        for user in list(self._listeners):
            self.dispatch(Event(user, "entries"))
            self.dispatch(Event(user, "read"))

    @property
    def open_streams(self) -> int:
        return sum(len(found) for found in self._listeners.values())


class InboxEvents(abc.ABC):
    def __init__(self) -> None:
        self.hub = Hub()

    @abc.abstractmethod
    async def publish(self, event: Event) -> None: ...

    async def start(self) -> None:
        """Begin relaying other processes' news to this process's streams (the API)."""
        return None

    async def close(self) -> None:
        return None


class MemoryInboxEvents(InboxEvents):
    """One process (`fmn run`): publishing is dispatching."""

    async def publish(self, event: Event) -> None:
        self.hub.dispatch(event)


_PROCESS_HUB = MemoryInboxEvents()


class RedisInboxEvents(InboxEvents):
    def __init__(self, client: aioredis.Redis) -> None:
        super().__init__()
        self.client = client
        # Channels are server-wide: the database number keeps two deployments (or two test
        # workers) sharing one Redis server apart.
        self.channel = f"{CHANNEL}:{client.connection_pool.connection_kwargs.get('db', 0)}"
        self._task: asyncio.Task[None] | None = None

    async def publish(self, event: Event) -> None:
        await self.client.publish(self.channel, event.to_json())

    async def start(self) -> None:
        if self._task is not None and not self._task.done():
            return
        ready = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._relay(ready), name="inbox-events")
        try:
            await ready
        except BaseException:
            self._task = None  # Redis away: the next stream tries again
            raise

    async def _relay(self, ready: asyncio.Future[None]) -> None:
        """Subscribe and relay; after a Redis outage, subscribe again and wake every stream
        (each then reads what it missed meanwhile from the database)."""
        delay = 0.5
        while True:
            try:
                pubsub: Any = self.client.pubsub(ignore_subscribe_messages=True)
                async with pubsub:
                    await pubsub.subscribe(self.channel)
                    if not ready.done():
                        ready.set_result(None)
                    else:
                        self.hub.wake_all()
                    delay = 0.5
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        event = Event.from_json(message["data"])
                        if event is not None:
                            self.hub.dispatch(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not ready.done():
                    ready.set_exception(exc)
                    return
                log.warning(
                    "inbox events: Redis subscription lost (%r); again in %.1fs", exc, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await cancel_and_wait(self._task)
        self._task = None
        await self.client.aclose()


def make_events(url: str) -> InboxEvents:
    """The news channel of the cache URL: Redis, or this process's hub for mem://."""
    if url.startswith("mem://"):
        return _PROCESS_HUB
    return RedisInboxEvents(aioredis.Redis.from_url(url))

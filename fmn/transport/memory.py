"""An in-process broker for the embedded default: the same semantics the code relies on from
RabbitMQ (topic and direct routing, unroutable refusal, acks, requeue, per-queue TTL with
dead-lettering for delayed retries), with nothing kept across restarts."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from fmn.transport.base import (
    Broker,
    Delivery,
    ExchangeType,
    Outgoing,
    PublishFailed,
    QueueSpec,
)


def topic_matches(pattern: str, routing_key: str) -> bool:
    """AMQP topic matching: "*" is exactly one word, "#" is zero or more words."""
    return _words_match(tuple(pattern.split(".")), tuple(routing_key.split(".")))


@lru_cache(maxsize=65536)
def _words_match(pattern: tuple[str, ...], key: tuple[str, ...]) -> bool:
    if not pattern:
        return not key
    if pattern[0] == "#":
        return _words_match(pattern[1:], key) or (bool(key) and _words_match(pattern, key[1:]))
    if not key:
        return False
    return pattern[0] in ("*", key[0]) and _words_match(pattern[1:], key[1:])


@dataclass
class _Message:
    routing_key: str
    exchange: str
    body: bytes
    message_id: str | None
    headers: dict[str, Any]
    redelivered: bool = False


@dataclass
class _Queue:
    spec: QueueSpec
    ready: deque[_Message] = field(default_factory=deque)
    waiters: list[asyncio.Event] = field(default_factory=list)

    def put(self, message: _Message) -> None:
        self.ready.append(message)
        for event in self.waiters:
            event.set()


class _MemoryDelivery(Delivery):
    def __init__(self, broker: MemoryBroker, queue: _Queue, message: _Message) -> None:
        self._broker = broker
        self._queue = queue
        self._message = message
        self._settled = False
        self.body = message.body
        self.routing_key = message.routing_key
        self.exchange = message.exchange
        self.message_id = message.message_id
        self.headers = dict(message.headers)
        self.redelivered = message.redelivered

    async def ack(self) -> None:
        self._settled = True

    async def nack(self, requeue: bool = True) -> None:
        if self._settled:
            return
        self._settled = True
        if requeue:
            self._message.redelivered = True
            self._queue.ready.appendleft(self._message)
            for event in self._queue.waiters:
                event.set()
        else:
            self._broker._dead_letter(self._queue, self._message, reason="rejected")


class MemoryBroker(Broker):
    def __init__(self) -> None:
        self._exchanges: dict[str, ExchangeType] = {
            "amq.topic": "topic",
            "amq.direct": "direct",
            "": "direct",
        }
        self._bindings: dict[str, list[tuple[str, str]]] = {}  # exchange -> [(key, queue)]
        self._queues: dict[str, _Queue] = {}
        self._names = itertools.count(1)
        self._closed = asyncio.Event()
        self._timers: set[asyncio.TimerHandle] = set()

    async def connect(self) -> None:
        self._closed.clear()

    async def close(self) -> None:
        self._closed.set()
        for timer in self._timers:
            timer.cancel()
        for queue in self._queues.values():
            for event in queue.waiters:
                event.set()

    async def declare_exchange(self, name: str, type: ExchangeType, durable: bool = True) -> None:
        self._exchanges.setdefault(name, type)

    async def declare_queue(self, spec: QueueSpec) -> str:
        name = spec.name or f"amq.gen-{next(self._names)}"
        if name not in self._queues:
            self._queues[name] = _Queue(spec)
        for exchange, key in spec.bindings:
            if exchange not in self._exchanges:
                raise ValueError(f"no exchange {exchange!r}")
            bindings = self._bindings.setdefault(exchange, [])
            if (key, name) not in bindings:
                bindings.append((key, name))
        return name

    def _route(self, exchange: str, routing_key: str) -> list[_Queue]:
        if exchange == "":
            queue = self._queues.get(routing_key)
            return [queue] if queue else []
        kind = self._exchanges[exchange]
        names = []
        for key, queue_name in self._bindings.get(exchange, []):
            if (
                kind == "fanout"
                or (kind == "direct" and key == routing_key)
                or (kind == "topic" and topic_matches(key, routing_key))
            ) and queue_name not in names:
                names.append(queue_name)
        return [self._queues[n] for n in names]

    def _deliver(self, exchange: str, message: _Message) -> bool:
        queues = self._route(exchange, message.routing_key)
        for queue in queues:
            copy = _Message(**{**message.__dict__, "headers": dict(message.headers)})
            ttl = queue.spec.arguments.get("x-message-ttl")
            if ttl is not None:
                self._schedule_expiry(queue, copy, ttl / 1000)
            else:
                queue.put(copy)
        return bool(queues)

    def _schedule_expiry(self, queue: _Queue, message: _Message, delay: float) -> None:
        loop = asyncio.get_running_loop()

        def expire() -> None:
            self._timers.discard(timer)
            self._dead_letter(queue, message, reason="expired")

        timer = loop.call_later(delay, expire)
        self._timers.add(timer)

    def _dead_letter(self, queue: _Queue, message: _Message, reason: str) -> None:
        exchange = queue.spec.arguments.get("x-dead-letter-exchange")
        if exchange is None:
            return
        key = queue.spec.arguments.get("x-dead-letter-routing-key", message.routing_key)
        headers = dict(message.headers)
        headers.setdefault("x-death", []).append({"queue": queue.spec.name, "reason": reason})
        self._deliver(exchange, _Message(key, exchange, message.body, message.message_id, headers))

    async def publish_many(self, exchange: str, messages: Sequence[Outgoing]) -> None:
        if self._closed.is_set():
            raise PublishFailed("broker closed")
        if exchange not in self._exchanges:
            raise PublishFailed(f"no exchange {exchange!r}")
        for out in messages:
            message = _Message(
                out.routing_key, exchange, out.body, out.message_id, dict(out.headers)
            )
            if not self._deliver(exchange, message):
                raise PublishFailed(f"unroutable: {exchange!r} {out.routing_key!r}")

    async def consume(  # type: ignore[override]
        self,
        queue: str,
        prefetch: int = 10,
        acks_in_order: bool = False,
        on_resume: Callable[[], None] | None = None,  # never: no connection to lose
    ) -> AsyncIterator[Delivery]:
        q = self._queues[queue]
        event = asyncio.Event()
        q.waiters.append(event)
        try:
            while not self._closed.is_set():
                if q.ready:
                    message = q.ready.popleft()
                    yield _MemoryDelivery(self, q, message)
                    continue
                event.clear()
                await event.wait()
        finally:
            q.waiters.remove(event)

    async def queue_size(self, queue: str) -> int:
        return len(self._queues[queue].ready)

    async def get(self, queue: str) -> Delivery | None:
        q = self._queues[queue]
        if not q.ready:
            return None
        return _MemoryDelivery(self, q, q.ready.popleft())

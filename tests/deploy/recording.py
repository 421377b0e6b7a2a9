"""A broker that only records what the code declares, to compare the deployment files with it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from fmn.transport.base import Broker, Delivery, ExchangeType, Outgoing, QueueSpec


class RecordingBroker(Broker):
    def __init__(self) -> None:
        self.exchanges: dict[str, ExchangeType] = {}
        self.queues: dict[str, QueueSpec] = {}

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def declare_exchange(self, name: str, type: ExchangeType, durable: bool = True) -> None:
        self.exchanges[name] = type

    async def declare_queue(self, spec: QueueSpec) -> str:
        self.queues[spec.name] = spec
        return spec.name or "amq.gen-recorded"

    async def publish_many(self, exchange: str, messages: Sequence[Outgoing]) -> None:
        raise NotImplementedError

    def consume(self, queue: str, prefetch: int = 10) -> AsyncIterator[Delivery]:
        raise NotImplementedError

    async def queue_size(self, queue: str) -> int:
        raise NotImplementedError

    async def get(self, queue: str) -> Delivery | None:
        raise NotImplementedError

    def durable_queues(self) -> dict[str, dict[str, Any]]:
        """Named durable queues: name -> {arguments, bindings} (what a definitions file holds)."""
        return {
            name: {"arguments": dict(spec.arguments), "bindings": sorted(spec.bindings)}
            for name, spec in self.queues.items()
            if name and spec.durable and not spec.exclusive
        }

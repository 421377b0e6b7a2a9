"""Message transport: `make_broker(url)` picks RabbitMQ (amqp://, amqps://) or the in-process
broker (memory://) of the embedded default. In-process brokers are shared per URL, so the
consumer, the senders and the API in one process see the same exchanges and queues."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fmn.transport.base import Broker, Delivery, Outgoing, PublishFailed, QueueSpec

__all__ = ["Broker", "Delivery", "Outgoing", "PublishFailed", "QueueSpec", "make_broker"]

_memory_brokers: dict[str, Broker] = {}


def make_broker(
    url: str, connection_name: str = "fmn", client_properties: Mapping[str, Any] | None = None
) -> Broker:
    if url.startswith("memory://"):
        from fmn.transport.memory import MemoryBroker

        return _memory_brokers.setdefault(url, MemoryBroker())
    if url.startswith(("amqp://", "amqps://")):
        from fmn.transport.amqp import AmqpBroker

        return AmqpBroker(url, connection_name, client_properties)
    raise ValueError(f"unsupported broker URL {url!r}: use amqp://, amqps:// or memory://")

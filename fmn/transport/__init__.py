"""Message transport: `make_broker(url)` picks RabbitMQ (amqp://, amqps://) or the in-process
broker (memory://) of the embedded default. In-process brokers are shared per URL, so the
consumer, the senders and the API in one process see the same exchanges and queues. Several
RabbitMQ URLs are the nodes of one cluster (fmn.transport.failover)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from fmn.transport.base import Broker, Delivery, Outgoing, PublishFailed, QueueSpec
from fmn.transport.queue_types import QueueType


class BrokerConfig(Protocol):
    """What a settings section says of a broker ([send_queue]; fmn.core.settings.BrokerSection)."""

    @property
    def broker_urls(self) -> list[str]: ...

    @property
    def queue_type(self) -> QueueType: ...


class BusConfig(BrokerConfig, Protocol):
    """[bus]: a broker, and the client properties fmn shows it."""

    @property
    def client_properties(self) -> Mapping[str, Any]: ...


__all__ = [
    "Broker",
    "Delivery",
    "Outgoing",
    "PublishFailed",
    "QueueSpec",
    "bus_broker",
    "make_broker",
    "send_broker",
]

_memory_brokers: dict[str, Broker] = {}


def make_broker(
    url: str | Sequence[str],
    connection_name: str = "fmn",
    client_properties: Mapping[str, Any] | None = None,
    queue_type: QueueType = "default",
) -> Broker:
    urls = [url] if isinstance(url, str) else list(url)
    if len(urls) > 1 and any(not u.startswith(("amqp://", "amqps://")) for u in urls):
        raise ValueError("several broker URLs are the nodes of a RabbitMQ cluster: amqp(s):// only")
    url = urls[0] if urls else ""
    if url.startswith("memory://"):
        from fmn.transport.memory import MemoryBroker

        return _memory_brokers.setdefault(url, MemoryBroker())
    if url.startswith(("amqp://", "amqps://")):
        from fmn.transport.amqp import AmqpBroker

        return AmqpBroker(urls, connection_name, client_properties, queue_type)
    raise ValueError(f"unsupported broker URL {url!r}: use amqp://, amqps:// or memory://")


def bus_broker(bus: BusConfig, connection_name: str) -> Broker:
    """The public bus as [bus] configures it (its nodes, client properties, queue type)."""
    return make_broker(bus.broker_urls, connection_name, bus.client_properties, bus.queue_type)


def send_broker(send: BrokerConfig, connection_name: str) -> Broker:
    """The private send queue's broker as [send_queue] configures it."""
    return make_broker(send.broker_urls, connection_name, queue_type=send.queue_type)

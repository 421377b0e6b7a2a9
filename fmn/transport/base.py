"""The broker interface: RabbitMQ through aio-pika in production, an in-process broker in the
embedded default. Consumers, senders and the API publish and consume only through this."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

ExchangeType = Literal["topic", "direct", "fanout"]


class PublishFailed(Exception):
    """The broker did not confirm a publish (refused, unroutable or unreachable)."""


@dataclass(frozen=True)
class Outgoing:
    """One message to publish."""

    routing_key: str
    body: bytes
    message_id: str | None = None
    headers: Mapping[str, Any] = field(default_factory=dict)
    persistent: bool = True
    content_type: str = "application/json"


@dataclass(frozen=True)
class QueueSpec:
    name: str
    durable: bool = True
    exclusive: bool = False
    auto_delete: bool = False
    # RabbitMQ arguments: x-message-ttl, x-dead-letter-exchange, x-dead-letter-routing-key, ...
    arguments: Mapping[str, Any] = field(default_factory=dict)
    # (exchange, routing key) pairs.
    bindings: Sequence[tuple[str, str]] = ()


class Delivery(abc.ABC):
    """A received message; exactly one of ack, nack or reject must be called."""

    body: bytes
    routing_key: str
    exchange: str
    message_id: str | None
    headers: dict[str, Any]
    redelivered: bool

    @abc.abstractmethod
    async def ack(self) -> None: ...

    @abc.abstractmethod
    async def nack(self, requeue: bool = True) -> None:
        """Return the message to its queue (requeue) or drop it / dead-letter it (not requeue)."""


class Broker(abc.ABC):
    @abc.abstractmethod
    async def connect(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def declare_exchange(self, name: str, type: ExchangeType, durable: bool = True) -> None:
        """Declare an exchange (the `amq.*` exchanges exist already)."""

    @abc.abstractmethod
    async def declare_queue(self, spec: QueueSpec) -> str:
        """Declare a queue and its bindings; returns its name (server-named if spec.name is "")."""

    @abc.abstractmethod
    async def publish_many(self, exchange: str, messages: Sequence[Outgoing]) -> None:
        """Publish and wait until the broker confirmed every message (confirms are pipelined).

        Raises PublishFailed if any was refused or could not be routed to a queue.
        """

    async def publish(self, exchange: str, message: Outgoing) -> None:
        await self.publish_many(exchange, [message])

    @abc.abstractmethod
    def consume(
        self,
        queue: str,
        prefetch: int = 10,
        acks_in_order: bool = False,
        on_resume: Callable[[], None] | None = None,
    ) -> AsyncIterator[Delivery]:
        """Deliveries from a queue, until the broker is closed.

        With acks_in_order, a broker may hold an ack back until every earlier delivery is
        settled too, and then settle them all at once (one AMQP frame for a run of acks): for a
        consumer that settles everything within moments, never for one that holds deliveries
        back for long (that would hold back the acks of all later ones).

        `on_resume` is called each time consumption resumes after a lost connection, once the
        queue is declared again: what was published meanwhile to a queue that went with the
        connection (an exclusive one) never reached it. That includes a first consumption on
        another connection than the queue's declaration. A connection lost before consumption
        starts is waited for, not an error.
        """

    @abc.abstractmethod
    async def queue_size(self, queue: str) -> int:
        """Messages ready in a queue (for status and backlog metrics)."""

    @abc.abstractmethod
    async def get(self, queue: str) -> Delivery | None:
        """Take one message from a queue without a consumer (dead-letter listing and replay)."""

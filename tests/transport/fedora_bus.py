"""A broker connected with the bus settings of a fedora-messaging file, and a message through it."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from fmn.core.settings import BusSettings
from fmn.transport import Broker, make_broker
from fmn.transport.base import Outgoing, QueueSpec


@contextlib.asynccontextmanager
async def broker_from(config: Path) -> AsyncIterator[Broker]:
    bus = BusSettings(fedora_messaging_config=str(config))
    broker = make_broker(bus.amqp_url, "fmn consumer", bus.client_properties)
    await broker.connect()
    try:
        yield broker
    finally:
        await broker.close()


async def round_trip(broker: Broker) -> None:
    """Declare a queue, publish to it, and see the broker hold the message."""
    queue = f"fm-{uuid.uuid4().hex[:8]}"
    await broker.declare_queue(QueueSpec(queue))
    await broker.publish("", Outgoing(queue, b"hello", message_id=uuid.uuid4().hex))
    assert await broker.queue_size(queue) == 1

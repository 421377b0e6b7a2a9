"""Both brokers behave the same for what fmn relies on: routing, confirms, refusal of unroutable
messages, requeue, and delayed retry through a TTL queue that dead-letters back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from fmn.transport import Broker, Delivery, Outgoing, PublishFailed, QueueSpec, make_broker
from fmn.transport.topology import declare_send_topology, retry_queue, send_queue


@pytest.fixture(params=["memory", "amqp"])
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[Broker]:
    if request.param == "memory":
        b = make_broker(f"memory://{uuid.uuid4().hex}")
    else:
        b = make_broker(request.getfixturevalue("amqp_url"))
    await b.connect()
    yield b
    await b.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def next_delivery(broker: Broker, queue: str) -> Delivery:
    async def first() -> Delivery:
        async for delivery in broker.consume(queue, prefetch=1):
            return delivery
        raise AssertionError("consumer ended")

    return await asyncio.wait_for(first(), 5.0)


async def test_topic_routing_and_ack(broker: Broker) -> None:
    queue = await broker.declare_queue(
        QueueSpec(unique("q"), bindings=[("amq.topic", "org.*.rule.#")])
    )
    await broker.publish(
        "amq.topic", Outgoing("org.fedora.rule.create.v1", b'{"a": 1}', message_id="m1")
    )
    delivery = await next_delivery(broker, queue)
    assert delivery.body == b'{"a": 1}'
    assert delivery.message_id == "m1"
    assert delivery.routing_key == "org.fedora.rule.create.v1"
    await delivery.ack()
    assert await broker.queue_size(queue) == 0


async def test_unroutable_publish_is_refused(broker: Broker) -> None:
    exchange = unique("ex")
    await broker.declare_exchange(exchange, "direct", durable=False)
    with pytest.raises(PublishFailed):
        await broker.publish(exchange, Outgoing("send.nowhere", b"{}"))


async def test_nack_requeues(broker: Broker) -> None:
    queue = await broker.declare_queue(QueueSpec(unique("q"), auto_delete=False))
    await broker.publish("", Outgoing(queue, b"x"))
    first = await next_delivery(broker, queue)
    await first.nack(requeue=True)
    again = await next_delivery(broker, queue)
    assert again.body == b"x"
    assert again.redelivered
    await again.ack()


async def test_retry_queue_delivers_back_after_its_delay(broker: Broker) -> None:
    exchange = unique("fmn.send")
    await declare_send_topology(broker, exchange, retry_delays=[0.2], protocols=["email"])
    await broker.publish("", Outgoing(retry_queue(exchange, "email", 0), b"later"))
    assert await broker.queue_size(send_queue(exchange, "email")) == 0
    delivery = await next_delivery(broker, send_queue(exchange, "email"))
    assert delivery.body == b"later"
    await delivery.ack()


async def test_many_publishes_are_all_confirmed(broker: Broker) -> None:
    exchange = unique("fmn.send")
    await declare_send_topology(broker, exchange, retry_delays=[], protocols=["irc"])
    await broker.publish_many(exchange, [Outgoing("send.irc", str(i).encode()) for i in range(200)])
    for _ in range(50):
        if await broker.queue_size(send_queue(exchange, "irc")) == 200:
            break
        await asyncio.sleep(0.05)
    assert await broker.queue_size(send_queue(exchange, "irc")) == 200

"""Both brokers behave the same for what fmn relies on: routing, confirms, refusal of unroutable
messages, requeue, and delayed retry through a TTL queue that dead-letters back."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator

import pytest

from fmn.sendqueue.topology import declare_send_topology, retry_queue, send_queue
from fmn.transport import Broker, Delivery, Outgoing, PublishFailed, QueueSpec, make_broker


@pytest.fixture(params=["memory", pytest.param("amqp", marks=pytest.mark.services)])
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


class _Taker:
    """Deliveries taken one by one from a single consumer of a queue."""

    def __init__(self, broker: Broker, queue: str) -> None:
        self._deliveries = broker.consume(queue, prefetch=100, acks_in_order=True)

    async def take(self, n: int) -> list[Delivery]:
        return [await asyncio.wait_for(anext(self._deliveries), 10.0) for _ in range(n)]

    async def close(self) -> None:
        await self._deliveries.aclose()  # type: ignore[attr-defined]


async def test_acks_in_order_settle_every_message_and_lose_none(amqp_url: str) -> None:
    """The consumer's acks go out in runs (one frame for many): settled in any order, every
    message ends acked, dropped or requeued as asked, and one whose ack is still outstanding is
    delivered again if the connection goes, however many later ones were acked."""
    queue = unique("q")
    first = make_broker(amqp_url)
    await first.connect()
    await first.declare_queue(QueueSpec(queue, auto_delete=False))
    await first.publish_many("", [Outgoing(queue, str(i).encode()) for i in range(60)])

    # Everything but the oldest acked, then the connection lost: the oldest is not lost.
    taken = await _Taker(first, queue).take(60)
    for delivery in taken[1:]:
        await delivery.ack()
    await first.close()

    second = make_broker(amqp_url)
    await second.connect()
    again = await _Taker(second, queue).take(1)
    assert again[0].body == b"0"
    await second.close()

    # Settled out of order, with drops and one requeue: exactly the requeued one is left.
    third = make_broker(amqp_url)
    await third.connect()
    size = await third.queue_size(queue)
    assert size >= 1
    taker = _Taker(third, queue)
    taken = await taker.take(size)
    order = list(range(len(taken)))
    random.Random(7).shuffle(order)
    requeued = taken[order[len(order) // 2]].body
    for i in order:
        delivery = taken[i]
        if delivery.body == requeued:
            await delivery.nack(requeue=True)
        elif i % 5 == 0:
            await delivery.nack(requeue=False)
        else:
            await delivery.ack()
    last = await taker.take(1)
    assert last[0].body == requeued
    await last[0].ack()
    await taker.close()
    await third.close()

    # A new connection sees an empty queue: every ack reached the broker (an unacked message
    # would have gone back to the queue when the connection closed).
    fourth = make_broker(amqp_url)
    await fourth.connect()
    assert await fourth.queue_size(queue) == 0
    await fourth.close()

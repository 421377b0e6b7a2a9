"""The RabbitMQ transport across a lost connection (a broker restart or a network cut, made
here by cutting a TCP proxy): consumption resumes by itself, with the queue's bindings, and a
delivery taken before the cut can still be settled without an error (the broker has put it back
already and delivers it again)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import uuid
from collections.abc import AsyncIterator
from typing import cast

import pytest
import redis.asyncio as aioredis
from aiormq import spec
from aiormq.abc import DeliveredMessage
from aiormq.exceptions import AMQPConnectionError
from pamqp.header import ContentHeader
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.soak_proxy import Proxy
from fmn.api.announce import to_outgoing
from fmn.consumer.service import SHUTDOWN_SECONDS, Consumer
from fmn.core.settings import Settings
from fmn.directory.cache import CachedDirectory, make_cache
from fmn.rule_messages import rule_message
from fmn.rules.incoming import parse_message
from fmn.transport import Broker, Delivery, Outgoing, PublishFailed, QueueSpec, make_broker
from fmn.transport.amqp import AmqpBroker, _AmqpDelivery
from tests.consumer.conftest import (
    SwitchableDirectory,
    add_rules,
    publish,
    rule,
    work_items,
)
from tests.consumer.test_consumer import TZDATA_EDIT, bob_becomes_a_committer_of_tzdata
from tests.consumer.test_team_rules import (
    LIST,
    python_sig_loses_its_last_member,
    team_rule,
    verify,
)
from tests.reliability.conftest import consumer_on
from tests.senders.helpers import eventually

pytestmark = pytest.mark.xdist_group("reliability")


def _through(amqp_url: str, proxy: Proxy) -> str:
    return amqp_url.replace("127.0.0.1:5672", f"127.0.0.1:{proxy.port}")


async def _next(deliveries: AsyncIterator[Delivery], timeout: float = 30) -> Delivery:
    return await asyncio.wait_for(anext(deliveries), timeout)


@pytest.mark.parametrize("exclusive", [False, True], ids=["durable", "exclusive"])
async def test_consumption_resumes_after_the_connection_is_lost(
    amqp_url: str, amqp_proxy: Proxy, client_broker: Broker, exclusive: bool
) -> None:
    proxy, client = amqp_proxy, client_broker
    broker = make_broker(_through(amqp_url, proxy), "outage test")
    await broker.connect()
    # An exchange of its own: a publish it routes can only have reached this test's queue.
    exchange = f"outage-test-{uuid.uuid4().hex[:8]}"
    await client.declare_exchange(exchange, "topic", durable=False)
    try:
        spec = QueueSpec(
            "" if exclusive else "outage-test-durable",
            durable=not exclusive,
            exclusive=exclusive,
            auto_delete=exclusive,
            bindings=[(exchange, "outage.test.#")],
        )
        queue = await broker.declare_queue(spec)
        deliveries = aiter(broker.consume(queue, prefetch=5))
        await client.publish(exchange, Outgoing("outage.test.one", b"1"))
        first = await _next(deliveries)
        assert first.body == b"1"

        proxy.set_cut(True)
        await asyncio.sleep(1)
        proxy.set_cut(False)
        # Taken before the cut: settling it must not raise (the broker requeued it).
        await first.ack()

        async def published_until_routed() -> None:
            # An exclusive queue is declared again, with its bindings, once reconnected.
            for _ in range(300):
                try:
                    await client.publish(exchange, Outgoing("outage.test.two", b"2"))
                    return
                except Exception:
                    await asyncio.sleep(0.1)

        await published_until_routed()
        bodies = set()
        while b"2" not in bodies:
            delivery = await _next(deliveries)
            bodies.add(delivery.body)
            await delivery.ack()
        if not exclusive:
            assert b"1" in bodies  # the unacked one came back
    finally:
        await broker.close()
        channel = client.channel  # type: ignore[attr-defined]
        if not exclusive:
            await channel.queue_delete("outage-test-durable")
        await channel.exchange_delete(exchange)


class _DyingChannel:
    """The channel of a delivery whose connection dies while it is being settled."""

    is_closed = False

    async def basic_ack(self, delivery_tag: int, multiple: bool = False) -> None:
        raise AMQPConnectionError("Server connection unexpectedly closed")

    async def basic_nack(self, delivery_tag: int, requeue: bool = True) -> None:
        raise ConnectionResetError(104, "Connection reset by peer")


def _dying_delivery() -> _AmqpDelivery:
    message = DeliveredMessage(
        delivery=spec.Basic.Deliver(delivery_tag=1, routing_key="k", exchange=""),
        header=ContentHeader(properties=spec.Basic.Properties(message_id="m1")),
        body=b"",
        channel=_DyingChannel(),  # type: ignore[arg-type]
    )
    return _AmqpDelivery(message)


async def test_settling_while_the_connection_dies_does_not_raise() -> None:
    await _dying_delivery().ack()
    await _dying_delivery().nack(requeue=True)


@pytest.mark.parametrize("when", ["before", "mid-batch"])
async def test_a_publish_on_a_channel_that_closed_is_a_publish_to_try_again(
    amqp_url: str, amqp_proxy: Proxy, client_broker: Broker, when: str
) -> None:
    # Not a bare ChannelInvalidStateError or ConnectionError: the consumer tries a PublishFailed
    # again, where another error hands its whole batch back (commit 2fbf29a).
    exchange = f"outage-test-{uuid.uuid4().hex[:8]}"
    await client_broker.declare_exchange(exchange, "topic", durable=False)
    spec = QueueSpec("", exclusive=True, auto_delete=True, bindings=[(exchange, "#")])
    broker = make_broker(_through(amqp_url, amqp_proxy), "outage test")
    await broker.connect()
    try:
        await broker.declare_queue(spec)  # so that the publishes are routable
        batch = [Outgoing(f"outage.{n}", b"x" * 2000) for n in range(2000)]
        if when == "before":
            amqp_proxy.set_cut(True)
            await asyncio.sleep(0.5)  # the client has seen its connection go
            publishing = asyncio.ensure_future(broker.publish_many(exchange, batch))
            await asyncio.sleep(1)
            amqp_proxy.set_cut(False)
            # It may wait for the connection to come back and publish then, or fail: as a
            # PublishFailed, nothing else.
            try:
                await asyncio.wait_for(publishing, 120)
            except PublishFailed:
                pass
            return
        publishing = asyncio.ensure_future(broker.publish_many(exchange, batch))
        await asyncio.sleep(0)  # the batch is on its way, its confirms not back
        amqp_proxy.set_cut(True)
        with pytest.raises(PublishFailed):
            await asyncio.wait_for(publishing, 60)
    finally:
        amqp_proxy.set_cut(False)
        await broker.close()
        await client_broker.channel.exchange_delete(exchange)  # type: ignore[attr-defined]


async def test_a_delivery_settled_twice_leaves_the_others_alone(client_broker: Broker) -> None:
    # A second settle of one delivery would be an unknown delivery tag to the broker, which
    # closes the channel and delivers every unacknowledged message on it again.
    exchange = f"outage-test-{uuid.uuid4().hex[:8]}"
    await client_broker.declare_exchange(exchange, "topic", durable=False)
    queue = await client_broker.declare_queue(
        QueueSpec("", durable=False, exclusive=True, auto_delete=True, bindings=[(exchange, "#")])
    )
    deliveries = aiter(client_broker.consume(queue, prefetch=10))
    try:
        for body in (b"1", b"2", b"3"):
            await client_broker.publish(exchange, Outgoing("twice.test", body))
        first, second = await _next(deliveries), await _next(deliveries)
        await first.nack(requeue=False)
        await first.nack(requeue=False)
        await first.ack()
        await second.ack()
        third = await _next(deliveries)
        assert (first.body, second.body, third.body) == (b"1", b"2", b"3")
        await third.ack()
        await client_broker.publish(exchange, Outgoing("twice.test", b"4"))
        fourth = await _next(deliveries)
        # Nothing came back: the channel stayed open and kept its settled deliveries settled.
        assert (fourth.body, fourth.redelivered) == (b"4", False)
        await fourth.ack()
    finally:
        await deliveries.aclose()  # type: ignore[attr-defined]
        await client_broker.channel.exchange_delete(exchange)  # type: ignore[attr-defined]


async def test_consumption_resumes_after_its_queue_is_deleted(
    amqp_url: str, client_broker: Broker
) -> None:
    # The broker cancels the consumer of a deleted queue; the queue is declared again, with its
    # bindings, and consumed from again.
    broker = make_broker(amqp_url, "cancel test")
    await broker.connect()
    exchange = f"outage-test-{uuid.uuid4().hex[:8]}"
    await client_broker.declare_exchange(exchange, "topic", durable=False)
    name = f"cancel-test-{uuid.uuid4().hex[:8]}"
    queue = await broker.declare_queue(QueueSpec(name, bindings=[(exchange, "cancel.#")]))
    deliveries = aiter(broker.consume(queue, prefetch=5))
    try:
        await client_broker.publish(exchange, Outgoing("cancel.one", b"1"))
        await (await _next(deliveries)).ack()
        await client_broker.channel.queue_delete(name)  # type: ignore[attr-defined]
        for _ in range(300):
            try:
                await client_broker.publish(exchange, Outgoing("cancel.two", b"2"))
                break
            except PublishFailed:  # unroutable until the queue and its binding are back
                await asyncio.sleep(0.1)
        delivery = await _next(deliveries)
        assert delivery.body == b"2"
        await delivery.ack()
    finally:
        await deliveries.aclose()  # type: ignore[attr-defined]
        await broker.close()
        await client_broker.channel.queue_delete(name)  # type: ignore[attr-defined]
        await client_broker.channel.exchange_delete(exchange)  # type: ignore[attr-defined]


async def test_rule_changes_announced_while_disconnected_are_applied(
    amqp_url: str,
    amqp_proxy: Proxy,
    client_broker: Broker,
    consumer_settings: Settings,
    directory: SwitchableDirectory,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """A consumer's control queue is exclusive to its connection: a rule change announced while
    that connection is lost (a broker restart, a network cut) is never queued for it. Found by
    the test of fmn on Fedora's bus (finding 14, reliability.md): the change waited for the
    hourly rebuild of the index. Now the index is rebuilt once the queue is back."""
    announce = functools.partial(_announced, sessionmaker, client_broker, consumer_settings)
    async with _running_through(
        amqp_proxy, amqp_url, consumer_settings, directory, sessionmaker
    ) as consumer:
        # A change announced while connected is applied: the control queue is consumed.
        await announce(1, "alice", {"name": "artifacts-owned", "params": ["alice"]})
        await eventually(lambda: len(consumer.index) == 1, timeout=30)
        amqp_proxy.set_cut(True)
        await announce(2, "bob", {"name": "users-followed", "params": ["ralph"]})
        amqp_proxy.set_cut(False)
        await _alice_and_bob_notified(consumer, client_broker, consumer_settings)


@pytest.mark.parametrize("change", ["membership", "ownership"])
async def test_directory_changes_announced_while_disconnected_are_applied(
    amqp_url: str,
    amqp_proxy: Proxy,
    client_broker: Broker,
    consumer_settings: Settings,
    directory: SwitchableDirectory,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis_url: str,
    redis_client: aioredis.Redis,
    change: str,
) -> None:
    """A membership or ownership change announced while a consumer's control queue is gone
    with its connection: the announcement would have made the consumer forget the directory's
    cached answers (shared by every process, in Redis) and update its index. Missed, the
    rebuild after the reconnection read the stale answers from the cache again, for up to
    `directory_ttl` (an hour; finding 14, reliability.md). Now the resume forgets them first."""
    cached = CachedDirectory(directory, make_cache(redis_url), ttl=3600)  # type: ignore[arg-type]
    owned = {"name": "artifacts-owned", "params": ["alice"]}
    if change == "membership":  # python-sig's team rule: the group loses its last member
        await add_rules(sessionmaker, rule(1, "alice", owned), team_rule())
        await verify(sessionmaker, "email", LIST)
        before, after = {"alice@example.org", LIST}, {"alice@example.org"}
    else:  # bob's owned packages: bob becomes a committer of tzdata
        bobs = {"name": "artifacts-owned", "params": ["bob"]}
        await add_rules(sessionmaker, rule(1, "alice", owned), rule(3, "bob", bobs))
        before, after = {"alice@example.org"}, {"alice@example.org", "bob@example.org"}
    try:
        async with _running_through(
            amqp_proxy, amqp_url, consumer_settings, cached, sessionmaker
        ) as consumer:

            def notified() -> set[str]:
                return {match.address for match in consumer.index.match(parse_message(TZDATA_EDIT))}

            assert notified() == before
            amqp_proxy.set_cut(True)
            if change == "membership":
                await python_sig_loses_its_last_member(directory, client_broker)
            else:
                await bob_becomes_a_committer_of_tzdata(directory, client_broker)
            amqp_proxy.set_cut(False)
            await eventually(lambda: notified() == after, timeout=60)
            message_id = await publish(client_broker, TZDATA_EDIT)
            items = await work_items(client_broker, consumer_settings, "email", len(after))
            assert {(i.message.id, i.address) for i in items} == {(message_id, a) for a in after}
    finally:
        amqp_proxy.set_cut(False)
        await cached.cache.close()


@contextlib.asynccontextmanager
async def _running_through(
    proxy: Proxy,
    amqp_url: str,
    settings: Settings,
    directory: SwitchableDirectory | CachedDirectory,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[Consumer]:
    """A consumer started and running, its bus connection through the proxy; stopped after."""
    consumer = Consumer(
        settings,
        directory=directory,  # type: ignore[arg-type]
        sessionmaker=sessionmaker,
        bus=make_broker(_through(amqp_url, proxy), "control gap test"),
        send=make_broker(settings.send_queue.amqp_url, "control gap test"),
        name="control gap test",
    )
    await consumer.start()
    running = asyncio.create_task(consumer.run())
    try:
        yield consumer
    finally:
        await consumer.stop()
        await asyncio.wait_for(running, 30)


async def _announced(
    sessionmaker: async_sessionmaker[AsyncSession],
    client_broker: Broker,
    settings: Settings,
    rule_id: int,
    owner: str,
    tracking: dict[str, object],
) -> None:
    """A rule committed, then announced as the API does (fmn/api/announce.py)."""
    await add_rules(sessionmaker, rule(rule_id, owner, tracking))
    message = rule_message("create", rule_id, f"rule {rule_id}", owner)
    await client_broker.publish(settings.bus.exchange, to_outgoing(message, ""))


async def _alice_and_bob_notified(
    consumer: Consumer, client_broker: Broker, settings: Settings
) -> None:
    """Once the consumer has both rules (alice's owned packages, bob's following ralph), a
    message about alice's package by ralph notifies both."""
    await eventually(lambda: len(consumer.index) == 2, timeout=60)
    message_id = await publish(client_broker, TZDATA_EDIT)
    items = await work_items(client_broker, settings, "email", 2, timeout=30)
    assert {(i.message.id, i.address) for i in items} == {
        (message_id, "alice@example.org"),
        (message_id, "bob@example.org"),
    }


def _connected(broker: Broker) -> bool:
    connection = cast(AmqpBroker, broker)._connection
    return connection is not None and connection.connected.is_set()


@pytest.mark.parametrize("then", ["restored", "stopped"])
async def test_a_consumer_cut_off_before_its_first_channel_waits_for_the_broker(
    amqp_url: str,
    amqp_proxy: Proxy,
    client_broker: Broker,
    consumer_settings: Settings,
    directory: SwitchableDirectory,
    sessionmaker: async_sessionmaker[AsyncSession],
    then: str,
) -> None:
    """The connection lost between `Consumer.start` and the opening of the consuming channels
    (finding 3, reliability.md): opening them raised, and the replica ended. They wait for the
    robust connection now, and a stop still ends the wait. A rule announced meanwhile reached
    no control queue (it went with the connection), so it is read when consumption starts."""
    await add_rules(
        sessionmaker, rule(1, "alice", {"name": "artifacts-owned", "params": ["alice"]})
    )
    consumer, engine = consumer_on(
        consumer_settings,
        directory,
        _through(amqp_url, amqp_proxy),
        consumer_settings.database.url,
        "first channel test",
    )
    await consumer.start()
    amqp_proxy.set_cut(True)
    await eventually(lambda: not _connected(consumer.bus), timeout=30)
    running = asyncio.create_task(consumer.run())
    try:
        announce = functools.partial(_announced, sessionmaker, client_broker, consumer_settings)
        await announce(2, "bob", {"name": "users-followed", "params": ["ralph"]})
        await asyncio.sleep(1)  # the consuming channels are being opened, the broker cut off
        assert not running.done(), running
        if then == "stopped":
            await consumer.stop()
            # A bound, not a timing: the wait must end with the stop, not with the broker.
            await asyncio.wait_for(running, SHUTDOWN_SECONDS + 30)
            return
        amqp_proxy.set_cut(False)
        await _alice_and_bob_notified(consumer, client_broker, consumer_settings)
    finally:
        amqp_proxy.set_cut(False)
        if not running.done():
            await consumer.stop()
            await asyncio.wait_for(running, 30)
        await engine.dispose()


@pytest.mark.parametrize("stalled", ["broker", "database"])
async def test_a_consumer_stops_when_a_service_has_stopped_answering(
    amqp_url: str,
    consumer_db_url: str,
    consumer_settings: Settings,
    directory: SwitchableDirectory,
    stalled: str,
) -> None:
    """A stop (SIGTERM) while the broker or the database takes the connection but answers
    nothing (starved, or blocking its clients) must not wait for it: writing the last counts
    would wait for ever. The process leaves; the broker puts back what was unacknowledged."""
    target = ("127.0.0.1", 5672) if stalled == "broker" else ("127.0.0.1", 5432)
    proxy = Proxy(target)
    await proxy.start()
    bus_url = _through(amqp_url, proxy) if stalled == "broker" else amqp_url
    db_url = consumer_db_url
    if stalled == "database":
        db_url = db_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    consumer, engine = consumer_on(
        consumer_settings, directory, bus_url, db_url, "stalled service test"
    )
    await consumer.start()
    running = asyncio.create_task(consumer.run())
    consumer.counts.add([1])  # counts to write at the stop
    proxy.set_stalled(True)
    try:
        await consumer.stop()
        # A bound, not a timing: without the consumer's own, writing the counts waited for
        # asyncpg's connect timeout (60 s), and for ever on a connection already open.
        await asyncio.wait_for(running, SHUTDOWN_SECONDS + 30)
    finally:
        proxy.set_stalled(False)
        await proxy.close()
        await engine.dispose()

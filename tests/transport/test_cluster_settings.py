"""Several broker URLs (a cluster's nodes) and quorum queues, on the real RabbitMQ: a process
connects to the first node that answers, fails over to the next when its node goes away, and
declares fmn's queues as quorum queues when told to; a queue of another type already there is
refused with what to do. (Node failures of a real three-node cluster: tests/reliability/
test_broker_cluster.py.)"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import uuid
from collections.abc import AsyncIterator

import pytest

from bench.soak_proxy import Proxy
from fmn.cli import ONE_LINE_ERRORS
from fmn.core.settings import Settings
from fmn.sendqueue.topology import declare_send_topology, retry_queue, send_queue
from fmn.transport import Broker, Delivery, Outgoing, QueueSpec, make_broker, send_broker
from fmn.transport.amqp import BrokerUnreachable
from fmn.transport.queue_types import QueueMismatch
from tests.harness.ports import free_port

pytestmark = [pytest.mark.services, pytest.mark.xdist_group("reliability")]


def _vhost(amqp_url: str) -> str:
    return amqp_url.rsplit("/", 1)[1]


def _port(amqp_url: str, port: int) -> str:
    return amqp_url.replace("127.0.0.1:5672", f"127.0.0.1:{port}")


async def _next(deliveries: AsyncIterator[Delivery], timeout: float = 60) -> Delivery:
    return await asyncio.wait_for(anext(deliveries), timeout)


def queue_types(vhost: str) -> dict[str, str]:
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "-p", vhost, "--no-table-headers", "name", "type"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    return dict(line.split("\t")[:2] for line in listed.splitlines() if "\t" in line)


def test_the_cluster_urls_replace_amqp_url() -> None:
    settings = Settings(
        send_queue={"amqp_urls": ["amqp://a:5672/%2F", "amqp://b:5672/%2F"], "queue_type": "quorum"}
    )
    assert settings.send_queue.broker_urls == ["amqp://a:5672/%2F", "amqp://b:5672/%2F"]
    assert Settings().bus.broker_urls == ["memory://"]
    with pytest.raises(ValueError, match="amqp"):
        Settings(bus={"amqp_urls": ["memory://x"]})


async def test_a_node_that_does_not_answer_is_skipped(
    amqp_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    broker = make_broker([_port(amqp_url, port), amqp_url], "failover test")
    with caplog.at_level(logging.WARNING, "fmn.transport.amqp"):
        await broker.connect()
    try:
        queue = await broker.declare_queue(QueueSpec(f"q-{uuid.uuid4().hex[:8]}", durable=False))
        await broker.publish("", Outgoing(queue, b"via the second node"))
        delivery = await _next(aiter(broker.consume(queue)))
        assert delivery.body == b"via the second node"
        await delivery.ack()
    finally:
        await broker.close()
    assert any(
        f"cannot connect to amqp://guest:***@127.0.0.1:{port}/" in r.message
        and "trying the next node" in r.message
        for r in caplog.records
    ), caplog.text


async def test_no_node_answering_says_which_were_tried(amqp_url: str) -> None:
    ports = [free_port() for _ in range(2)]
    broker = make_broker([_port(amqp_url, port) for port in ports], "failover test")
    with pytest.raises(BrokerUnreachable) as failure:
        await broker.connect()
    for port in ports:
        assert f"127.0.0.1:{port}/" in str(failure.value)


async def test_a_lost_connection_fails_over_to_the_next_node(
    amqp_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Two "nodes": two proxies to the same RabbitMQ. The first is cut for good (every connection
    # reset, new ones refused): the client must go on through the second.
    first, second = Proxy(("127.0.0.1", 5672)), Proxy(("127.0.0.1", 5672))
    await first.start()
    await second.start()
    broker: Broker = make_broker(
        [_port(amqp_url, first.port), _port(amqp_url, second.port)], "failover test"
    )
    publisher = make_broker(amqp_url, "failover test publisher")
    await broker.connect()
    await publisher.connect()
    try:
        exchange = f"ex-{uuid.uuid4().hex[:8]}"
        await broker.declare_exchange(exchange, "direct", durable=False)
        # A durable queue: what is published while the client is away waits for it.
        queue = await broker.declare_queue(
            QueueSpec(f"q-{uuid.uuid4().hex[:8]}", bindings=[(exchange, "k")])
        )
        deliveries = aiter(broker.consume(queue))
        await publisher.publish(exchange, Outgoing("k", b"before"))
        await (await _next(deliveries)).ack()
        with caplog.at_level(logging.WARNING, "fmn.transport.failover"):
            first.set_cut(True)
            first.reset_all()
            await publisher.publish(exchange, Outgoing("k", b"after"))
            delivery = await _next(deliveries)
            if delivery.body == b"before":  # its ack was lost with the cut: at least once
                await delivery.ack()
                delivery = await _next(deliveries)
        assert delivery.body == b"after"
        await delivery.ack()
        assert any("failed over to" in r.message for r in caplog.records), caplog.text
        assert str(second.port) in caplog.text
    finally:
        await broker.close()
        await publisher.close()
        await first.close()
        await second.close()


async def test_quorum_queues_and_their_retries(amqp_url: str) -> None:
    settings = Settings(send_queue={"amqp_url": amqp_url, "queue_type": "quorum"})
    broker = send_broker(settings.send_queue, "quorum test")
    await broker.connect()
    exchange = f"fmn.send.{uuid.uuid4().hex[:8]}"
    try:
        await declare_send_topology(broker, exchange, retry_delays=[0.2], protocols=["email"])
        # A retry: the delay ends in the quorum retry queue, which dead-letters the item (at
        # least once) back to the send queue.
        await broker.publish("", Outgoing(retry_queue(exchange, "email", 0), b"later"))
        delivery = await _next(aiter(broker.consume(send_queue(exchange, "email"))))
        assert delivery.body == b"later"
        await delivery.ack()
        # Declared again (every process does at its start): the same queues, no complaint.
        await declare_send_topology(broker, exchange, retry_delays=[0.2], protocols=["email"])
    finally:
        await broker.close()
    types = queue_types(_vhost(amqp_url))
    for name in (send_queue(exchange, "email"), retry_queue(exchange, "email", 0)):
        assert types[name] == "quorum", types


async def test_a_queue_of_another_type_is_refused_with_what_to_do(amqp_url: str) -> None:
    name = f"fmn.send.{uuid.uuid4().hex[:8]}.email"
    classic = make_broker(amqp_url, "classic")
    await classic.connect()
    await classic.declare_queue(QueueSpec(name))
    await classic.close()
    quorum = make_broker(amqp_url, "quorum", queue_type="quorum")
    await quorum.connect()
    try:
        with pytest.raises(QueueMismatch) as refused:
            await quorum.declare_queue(QueueSpec(name))
    finally:
        await quorum.close()
    message = str(refused.value)
    assert isinstance(refused.value, ONE_LINE_ERRORS)  # `fmn` prints it as one line
    assert repr(name) in message and "'quorum'" in message and "x-queue-type" in message
    assert f"rabbitmqctl delete_queue -p {_vhost(amqp_url)} {name}" in message

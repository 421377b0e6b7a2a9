"""The consumer's cost per message, stage by stage, in µs of CPU.

Each stage is the consumer's own code run in this process over the same messages the benchmark
publishes, in the consumer's batches (`consumer.batch_size`, `consumer.items_per_message`):

    decode     the delivery's body read as JSON (fmn.consumer.service.decode)
    schema     the schema class, the message object built from it
    validate   the body checked against its schema (only for messages some rule matched)
    parse      the rest of parse_message: the match keys read from the schema's properties
    match      the rule index
    render     the work items' text (only for matched messages)
    pack       the work items serialized into AMQP messages
    publish    the AMQP messages published with publisher confirms, confirms received
    archive    the archive's rows built and written (client side of the transaction)
    receive+ack  deliveries taken from a queue and acknowledged in runs

What the sum leaves out of the consumer's measured CPU is the glue between the stages: batching,
tasks and the event loop, metrics, counts, logging, garbage collection.
"""

from __future__ import annotations

import asyncio
import gc
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import aiormq
import pika
from fedora_messaging import message as fm
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fmn.archive import archive_batch
from fmn.consumer.service import decode
from fmn.core.settings import ConsumerSettings
from fmn.notify import build_work_items
from fmn.rules.incoming import ParsedMessage, _validators, message_class, parse_message
from fmn.rules.index import Match, RuleIndex
from fmn.sendqueue.workitem import WorkItem, pack
from fmn.transport.amqp import AmqpBroker
from fmn.transport.base import Delivery, QueueSpec

STAGES = (
    "decode",
    "schema",
    "validate",
    "parse",
    "match",
    "render",
    "pack",
    "publish",
    "archive",
    "receive+ack",
)


class _Received(Delivery):
    """A delivery as the consumer gets it, without a broker."""

    def __init__(self, body: bytes, topic: str, message_id: str, headers: dict[str, Any]) -> None:
        self.body = body
        self.routing_key = topic
        self.exchange = "amq.topic"
        self.message_id = message_id
        self.headers = headers
        self.redelivered = False

    async def ack(self) -> None:
        pass

    async def nack(self, requeue: bool = True) -> None:
        pass


@dataclass
class Breakdown:
    messages: int
    cpu: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))

    def per_message(self, stage: str) -> float:
        return self.cpu[stage] / self.messages * 1e6

    def total(self) -> float:
        return sum(self.cpu.values()) / self.messages * 1e6

    def lines(self, measured_us: float | None = None) -> list[str]:
        lines = [f"  {stage:<12} {self.per_message(stage):7.1f} µs" for stage in STAGES]
        lines.append(f"  {'sum':<12} {self.total():7.1f} µs")
        if measured_us is not None:
            lines.append(
                f"  {'the rest':<12} {measured_us - self.total():7.1f} µs  (the consumer's "
                f"{measured_us:,.0f} µs less the stages: batching, tasks, event loop, metrics, GC)"
            )
        return lines


@dataclass
class _Timer:
    breakdown: Breakdown

    def run(self, stage: str, action: Callable[[], Any]) -> Any:
        started = time.process_time()
        result = action()
        self.breakdown.cpu[stage] += time.process_time() - started
        return result


def _batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def measure(
    messages: list[dict[str, Any]],
    bodies: list[bytes],
    index: RuleIndex,
    sessionmaker: async_sessionmaker[AsyncSession],
    amqp_url: str,
    settings: ConsumerSettings,
) -> Breakdown:
    """Run every stage over `messages` (bodies: each message's body as published)."""
    gc.collect()
    gc.freeze()  # as the consumer does once its index is built
    breakdown = Breakdown(len(messages))
    timer = _Timer(breakdown)
    deliveries = [
        _Received(body, m["topic"], str(uuid.uuid4()), dict(m["headers"]))
        for m, body in zip(messages, bodies, strict=True)
    ]
    broker = AmqpBroker(amqp_url, "fmn bench stages")
    await broker.connect()
    exchange = "fmn-bench-stages"
    await broker.declare_exchange(exchange, "direct")
    sink = await broker.declare_queue(
        QueueSpec("fmn-bench-stages", bindings=[(exchange, f"send.{p}") for p in _PROTOCOLS])
    )
    try:
        for batch in _batches(deliveries, settings.batch_size):
            data = [
                timer.run("decode", lambda d=d: decode(d, settings.max_body_bytes)) for d in batch
            ]
            parsed = [_parse(breakdown, d) for d in data]
            matches = [timer.run("match", lambda p=p: index.match(p)) for p in parsed]
            for p in parsed:
                _validation_apart(breakdown, p)
            items: list[WorkItem] = []
            for p, found in zip(parsed, matches, strict=True):
                if found:
                    items.extend(timer.run("render", lambda p=p, f=found: _render(p, f)))
            outgoing = timer.run("pack", lambda i=items: pack(i, settings.items_per_message))
            started = time.process_time()
            if outgoing:
                await broker.publish_many(exchange, outgoing)
            breakdown.cpu["publish"] += time.process_time() - started
            started = time.process_time()
            await archive_batch(
                sessionmaker,
                [(p, d, delivery.body) for p, d, delivery in zip(parsed, data, batch, strict=True)],
            )
            breakdown.cpu["archive"] += time.process_time() - started
        await _purge(broker, sink)
        breakdown.cpu["receive+ack"] = await _receive_and_ack(amqp_url, bodies, messages)
    finally:
        await broker.close()
        gc.unfreeze()
    return breakdown


_PROTOCOLS = ("email", "irc", "matrix")


def _parse(breakdown: Breakdown, data: dict[str, Any]) -> ParsedMessage:
    """parse_message, less its schema class and message object (timed apart, built once more
    here as parse_message builds them)."""
    name = data["headers"].get("fedora_messaging_schema")
    started = time.process_time()
    cls = message_class(name) if isinstance(name, str) else fm.Message
    cls(
        body=data["body"],
        topic=data["topic"],
        properties=pika.BasicProperties(headers=data["headers"], message_id=data["id"]),
    )
    schema = time.process_time() - started
    started = time.process_time()
    parsed = parse_message(data)
    breakdown.cpu["schema"] += schema
    breakdown.cpu["parse"] += time.process_time() - started - schema
    return parsed


def _validation_apart(breakdown: Breakdown, parsed: ParsedMessage) -> None:
    """The index validates a message's body once some rule matched it: that part of the match
    stage, timed again with the same compiled validator, is the validate stage."""
    if not parsed._body_checked or not parsed.known_schema:
        return
    started = time.process_time()
    _validators.error(parsed._message.body_schema, parsed.body)
    spent = time.process_time() - started
    breakdown.cpu["validate"] += spent
    breakdown.cpu["match"] -= spent


def _render(parsed: ParsedMessage, matches: list[Match]) -> list[WorkItem]:
    return build_work_items(parsed, matches)


async def _purge(broker: AmqpBroker, queue: str) -> None:
    channel = await broker.channel.get_underlay_channel()
    await channel.queue_purge(queue)


async def _receive_and_ack(
    amqp_url: str, bodies: list[bytes], messages: list[dict[str, Any]]
) -> float:
    """CPU of taking len(bodies) deliveries off a queue and acking them as the consumer does."""
    queue = f"fmn-bench-receive-{uuid.uuid4().hex[:6]}"
    connection = await aio_pika.connect_robust(amqp_url)
    channel = await connection.channel()
    await channel.declare_queue(queue, auto_delete=False)
    underlay = await channel.get_underlay_channel()
    assert isinstance(underlay, aiormq.Channel)
    for body, message in zip(bodies, messages, strict=True):
        await underlay.basic_publish(
            body,
            routing_key=queue,
            properties=aiormq.spec.Basic.Properties(
                message_id=str(uuid.uuid4()),
                headers=dict(message["headers"]),
                content_type="application/json",
                delivery_mode=2,
            ),
            wait=False,
        )
    while (await underlay.queue_declare(queue, passive=True)).message_count < len(bodies):
        await asyncio.sleep(0.05)
    broker = AmqpBroker(amqp_url, "fmn bench receive")
    await broker.connect()
    started = time.process_time()
    deliveries = broker.consume(queue, prefetch=1000, acks_in_order=True)
    for _ in bodies:
        await (await anext(deliveries)).ack()
    await deliveries.aclose()  # type: ignore[attr-defined]
    for acks in broker._ack_runs:
        await acks.sent()
    spent = time.process_time() - started
    await broker.close()
    await channel.queue_delete(queue)
    await connection.close()
    return spent

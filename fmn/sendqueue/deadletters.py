"""Dead letters: work items a sender gave up on, kept in one queue per protocol with the reason
in their headers. Listed, replayed and discarded by `fmn deadletter` and the API's admin
endpoints through the functions here.

AMQP cannot browse a queue, so listing takes every message without acknowledging it and then
returns them all, in their order, to the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from fmn.core.settings import SendQueueSettings
from fmn.sendqueue.topology import dead_letter_queue, declare_send_topology
from fmn.sendqueue.workitem import (
    ATTEMPTS_HEADER,
    FAILED_AT_HEADER,
    PROTOCOLS,
    REASON_HEADER,
    WorkItem,
    routing_key,
    unpack,
)
from fmn.transport import send_broker
from fmn.transport.base import Broker, Delivery, Outgoing


@dataclass(frozen=True)
class DeadLetter:
    id: str
    protocol: str
    reason: str
    attempts: int
    failed_at: str
    body: bytes
    item: WorkItem | None  # None when the body is not a valid work item

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary, for the CLI and the API."""
        return {
            "id": self.id,
            "protocol": self.protocol,
            "reason": self.reason,
            "attempts": self.attempts,
            "failed_at": self.failed_at,
            "key": self.item.key if self.item else None,
            "user": self.item.user if self.item else None,
            "address": self.item.address if self.item else None,
            "summary": self.item.message.summary if self.item else None,
            "body": None if self.item else self.body.decode("utf-8", "replace")[:2000],
        }


async def dead_letter(
    broker: Broker, exchange: str, protocol: str, body: bytes, reason: str, attempts: int
) -> None:
    """Put a work item (or an unreadable body) in the protocol's dead-letter queue."""
    await broker.publish(
        "",
        Outgoing(
            dead_letter_queue(exchange, protocol),
            body,
            message_id=uuid.uuid4().hex,
            headers={
                REASON_HEADER: reason[:1000],
                ATTEMPTS_HEADER: attempts,
                FAILED_AT_HEADER: dt.datetime.now(dt.UTC).isoformat(),
            },
        ),
    )


def _parse(protocol: str, delivery: Delivery) -> DeadLetter:
    try:
        item: WorkItem | None = WorkItem.from_bytes(delivery.body)
    except (ValidationError, ValueError):
        item = None
    headers = delivery.headers
    reason = str(headers.get(REASON_HEADER, "")) or _broker_reason(headers)
    parts = 1 if item is not None else len(unpack(delivery.body))
    if parts > 1:
        # A message of several work items, dead-lettered whole by the broker (a delivery limit):
        # a replay sends it back to the send queue, where the sender splits it again.
        reason = f"{reason or 'dead-lettered'} ({parts} work items in one message)"
    return DeadLetter(
        id=delivery.message_id or "",
        protocol=protocol,
        reason=reason,
        attempts=int(headers.get(ATTEMPTS_HEADER, 0) or 0),
        failed_at=str(headers.get(FAILED_AT_HEADER, "")),
        body=delivery.body,
        item=item,
    )


def _broker_reason(headers: dict[str, Any]) -> str:
    """Why RabbitMQ dead-lettered a message (its x-death header), or ""."""
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        why = deaths[0].get("reason", "unknown reason")
        if isinstance(why, bytes):
            why = why.decode("utf-8", "replace")
        return f"dead-lettered by the broker: {why}"
    return ""


Decide = Callable[[DeadLetter, Delivery], Awaitable[bool]]


async def _walk(broker: Broker, exchange: str, protocol: str, decide: Decide) -> int:
    """Take every message of the queue, let `decide` settle some (returns True), and put the
    others back. Returns how many were settled."""
    queue = dead_letter_queue(exchange, protocol)
    held: list[Delivery] = []
    settled = 0
    try:
        for _ in range(await broker.queue_size(queue)):
            delivery = await broker.get(queue)
            if delivery is None:
                break
            if await decide(_parse(protocol, delivery), delivery):
                settled += 1
            else:
                held.append(delivery)
    finally:
        # Newest first, so an in-process queue (which requeues at its head) keeps its order.
        for delivery in reversed(held):
            await delivery.nack(requeue=True)
        await _until_back(broker, queue, len(held))
    return settled


async def _until_back(broker: Broker, queue: str, count: int) -> None:
    """RabbitMQ puts nacked messages back a moment after the nack: wait for it (a few seconds at
    most), so that a second listing right after this one sees them too."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(5.0):
            while await broker.queue_size(queue) < count:  # noqa: ASYNC110 (broker state)
                await asyncio.sleep(0.02)


def _protocols(protocol: str | None) -> tuple[str, ...]:
    return (protocol,) if protocol else PROTOCOLS


async def list_dead_letters(
    broker: Broker, exchange: str, protocol: str | None = None, limit: int = 100
) -> list[DeadLetter]:
    found: list[DeadLetter] = []
    for p in _protocols(protocol):

        async def keep(letter: DeadLetter, _delivery: Delivery) -> bool:
            if len(found) < limit:
                found.append(letter)
            return False

        await _walk(broker, exchange, p, keep)
    return found


async def replay_dead_letters(
    broker: Broker, exchange: str, protocol: str | None = None, ids: Collection[str] | None = None
) -> int:
    """Send dead letters (all, or those with these ids) back to their protocol's queue, with
    their attempts counted afresh. Returns how many were replayed."""
    total = 0
    for p in _protocols(protocol):

        async def replay(letter: DeadLetter, delivery: Delivery, p: str = p) -> bool:
            if ids is not None and letter.id not in ids:
                return False
            await broker.publish(
                exchange, Outgoing(routing_key(p), letter.body, message_id=letter.id)
            )
            await delivery.ack()
            return True

        total += await _walk(broker, exchange, p, replay)
    return total


async def discard_dead_letters(
    broker: Broker, exchange: str, protocol: str | None = None, ids: Collection[str] | None = None
) -> int:
    total = 0
    for p in _protocols(protocol):

        async def discard(letter: DeadLetter, delivery: Delivery) -> bool:
            if ids is not None and letter.id not in ids:
                return False
            await delivery.ack()
            return True

        total += await _walk(broker, exchange, p, discard)
    return total


async def open_broker(settings: SendQueueSettings) -> Broker:
    """A connected broker with the queues dead letters go to and come back to declared, for
    callers outside a sender. Retry queues are left alone: their delays are the senders'."""
    broker = send_broker(settings, "fmn dead letters")
    await broker.connect()
    await declare_send_topology(broker, settings.exchange, retry_delays=())
    return broker

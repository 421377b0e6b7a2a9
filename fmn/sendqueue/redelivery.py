"""What a sender takes from its queue, and what keeps a redelivery from sending anything twice.

A message carries one work item or several (fmn.sendqueue.workitem.pack). The sender loop
treats each as a delivery of its own (`split`); the message itself is acked once every part is
settled. If any part asked to be given back (nack with requeue: Redis or the broker failing
around it), the whole message is given back once the others are settled: its parts that were
sent already are skipped on redelivery by their sent keys, and the parts passed on to a retry or
dead-letter queue are remembered (`Memory`), so nothing is sent or dead-lettered twice and
nothing is lost.

A transient failure sends the item to the retry queue of its attempt (`retry_later`), a TTL
queue that dead-letters it back to the send queue with the attempts counted in a header.
"""

from __future__ import annotations

import logging

from cachetools import FIFOCache

from fmn.sendqueue.topology import ATTEMPT_HEADER, REASON_HEADER, retry_queue
from fmn.sendqueue.workitem import unpack
from fmn.transport.base import Broker, Delivery, Outgoing

log = logging.getLogger(__name__)

# How many sent keys and passed-on items a sender remembers: far more than it holds unacked.
MEMORY_SIZE = 10_000


def attempt_of(delivery: Delivery) -> int:
    """Attempts made before this delivery (0 for an item fresh from the consumer)."""
    return int(delivery.headers.get(ATTEMPT_HEADER, 0) or 0)


async def retry_later(
    broker: Broker, exchange: str, protocol: str, delivery: Delivery, made: int, reason: str
) -> None:
    """Put the item, after `made` attempts, in the retry queue that sends it back after the
    delay for its next attempt."""
    await broker.publish(
        "",
        Outgoing(
            retry_queue(exchange, protocol, made),
            delivery.body,
            message_id=delivery.message_id,
            headers={ATTEMPT_HEADER: made + 1, REASON_HEADER: reason[:1000]},
        ),
    )


class Memory:
    """What this sender process settled lately, oldest forgotten first.

    Keys sent here: a second copy of an item that arrives while the first is being marked sent
    (its Redis mark not written yet) is not sent. Items passed on to a retry or dead-letter
    queue (body and attempt): when a message of several items comes back because another of
    its items was given back, these are not passed on a second time."""

    def __init__(self, size: int = MEMORY_SIZE) -> None:
        self._sent: FIFOCache[str, None] = FIFOCache(size)
        self._passed_on: FIFOCache[tuple[int, int], None] = FIFOCache(size)

    def sent(self, key: str) -> None:
        self._sent[key] = None

    def was_sent(self, key: str) -> bool:
        return key in self._sent

    def passed_on(self, delivery: Delivery) -> None:
        self._passed_on[_identity(delivery)] = None

    def was_passed_on(self, delivery: Delivery) -> bool:
        # Only a redelivered message can hold an item this process passed on.
        return delivery.redelivered and _identity(delivery) in self._passed_on


def _identity(delivery: Delivery) -> tuple[int, int]:
    return hash(delivery.body), attempt_of(delivery)


class _Whole:
    """The AMQP message behind the parts, and what is still unsettled of it."""

    def __init__(self, delivery: Delivery, parts: int) -> None:
        self.delivery = delivery
        self.unsettled = parts
        self.give_back = False

    async def settled(self, requeue: bool) -> None:
        self.unsettled -= 1
        self.give_back = self.give_back or requeue
        if self.unsettled:
            return
        if self.give_back:
            await self.delivery.nack(requeue=True)
        else:
            await self.delivery.ack()


class DeliveryPart(Delivery):
    """One work item of a message that carries several."""

    def __init__(self, whole: _Whole, body: bytes, number: int) -> None:
        source = whole.delivery
        self._whole = whole
        self._settled = False
        self.body = body
        self.routing_key = source.routing_key
        self.exchange = source.exchange
        self.message_id = f"{source.message_id or '(no id)'}#{number}"
        self.headers = source.headers
        self.redelivered = source.redelivered

    async def ack(self) -> None:
        await self._settle(requeue=False)

    async def nack(self, requeue: bool = True) -> None:
        # Without requeue a part is dropped like a message would be; the loop never does this
        # (it dead-letters through its own queue, then acks).
        await self._settle(requeue=requeue)

    async def _settle(self, requeue: bool) -> None:
        if self._settled:
            log.warning("part %s settled twice; the second is ignored", self.message_id)
            return
        self._settled = True
        await self._whole.settled(requeue)


def split(delivery: Delivery) -> list[Delivery]:
    """The deliveries to handle for one AMQP message: itself if it carries one work item."""
    bodies = unpack(delivery.body)
    if len(bodies) == 1:
        return [delivery]
    whole = _Whole(delivery, len(bodies))
    return [DeliveryPart(whole, body, number) for number, body in enumerate(bodies, 1)]

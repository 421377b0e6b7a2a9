"""The work items of one AMQP message, each settled on its own by the sender loop.

The consumer packs several work items into one message (fmn.workitem.pack). The loop treats
each as a delivery of its own (`DeliveryPart`); the message itself is acked once every part is
settled. If any part asked to be given back (nack with requeue: Redis or the broker failing
around it), the whole message is given back once the others are settled: its parts that were
sent already are skipped on redelivery by their sent keys, and the loop remembers the parts it
passed on to a retry or dead-letter queue (SenderLoop._passed_on), so nothing is sent or
dead-lettered twice and nothing is lost.
"""

from __future__ import annotations

import logging

from fmn.transport.base import Delivery
from fmn.workitem import unpack

log = logging.getLogger(__name__)


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

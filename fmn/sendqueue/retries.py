"""Retries: a transient failure sends the item to the retry queue of its attempt (`retry_later`),
a TTL queue that dead-letters it back to the send queue with the attempts counted in a header.
"""

from __future__ import annotations

from fmn.sendqueue.topology import retry_queue
from fmn.sendqueue.workitem import ATTEMPT_HEADER, REASON_HEADER
from fmn.transport.base import Broker, Delivery, Outgoing


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

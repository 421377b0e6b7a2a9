"""The private send topology, declared identically by the consumer (before it publishes) and the
senders (before they consume), so neither depends on the other having started first.

    exchange <send>            direct; routing key send.<protocol> -> queue <send>.<protocol>
    queue <send>.retry.<p>.<i> TTL = retry_delays[i]; expired items go back to send.<p>
    queue <send>.dead.<p>      dead letters, listed and replayed by `fmn deadletter`

A work item on its way back from a retry queue carries the attempts made so far and the last
failure's reason in its headers; a dead letter carries the reason, the attempts and the time
(the headers' names are fmn.sendqueue.workitem's).
"""

from __future__ import annotations

from collections.abc import Sequence

from fmn.sendqueue.workitem import PROTOCOLS, routing_key
from fmn.transport.base import Broker, QueueSpec


def send_queue(exchange: str, protocol: str) -> str:
    return f"{exchange}.{protocol}"


def retry_queue(exchange: str, protocol: str, attempt: int) -> str:
    return f"{exchange}.retry.{protocol}.{attempt}"


def dead_letter_queue(exchange: str, protocol: str) -> str:
    return f"{exchange}.dead.{protocol}"


async def declare_send_topology(
    broker: Broker,
    exchange: str,
    retry_delays: Sequence[float],
    protocols: Sequence[str] = PROTOCOLS,
) -> None:
    """Declare the exchange and, per protocol, the send queue, one retry queue per delay and the
    dead-letter queue. With no delays, the retry queues are left alone (tools outside a sender
    need only the queues dead letters go to and come back to)."""
    await broker.declare_exchange(exchange, "direct")
    for protocol in protocols:
        key = routing_key(protocol)
        await broker.declare_queue(
            QueueSpec(send_queue(exchange, protocol), bindings=[(exchange, key)])
        )
        for attempt, delay in enumerate(retry_delays):
            await broker.declare_queue(
                QueueSpec(
                    retry_queue(exchange, protocol, attempt),
                    arguments={
                        "x-message-ttl": int(delay * 1000),
                        "x-dead-letter-exchange": exchange,
                        "x-dead-letter-routing-key": key,
                    },
                )
            )
        await broker.declare_queue(QueueSpec(dead_letter_queue(exchange, protocol)))

"""A sender across a short Redis outage (found by the soak in restart mode): the idempotency
check of an item is started when the item is taken in; an item taken in while Redis was away
then waits in its destination's queue. When its turn comes, Redis is back: it must be checked
again and sent, not handed back to the broker for a failure that is over (each hand-back held a
worker for a second, so a sender took minutes to work through a backlog after a 5 s outage)."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis

from bench.soak_proxy import Proxy
from fmn.senders.handler import Handler
from fmn.senders.loop import LoopConfig, SenderLoop
from fmn.senders.state import DeliveryLog, PreferenceReader, RedisSenderState
from fmn.sendqueue.workitem import Protocol, WorkItem
from tests.senders.helpers import make_item

pytestmark = pytest.mark.xdist_group("reliability")


class _Recorder(Handler):
    protocol: ClassVar[Protocol] = "email"

    def __init__(self) -> None:
        self.sent: list[str] = []

    def check_address(self, address: str) -> None:
        pass

    async def send(self, item: WorkItem) -> None:
        self.sent.append(item.key)

    async def send_digest(self, digest: Any) -> None:
        raise AssertionError("no digest here")


class _Delivery:
    def __init__(self, item: WorkItem) -> None:
        self.body = item.to_bytes()
        self.routing_key = "send.email"
        self.message_id = item.key
        self.headers: dict[str, Any] = {}
        self.redelivered = False
        self.settled: list[str] = []

    async def ack(self) -> None:
        self.settled.append("ack")

    async def nack(self, requeue: bool = True) -> None:
        self.settled.append(f"nack(requeue={requeue})")


async def test_an_item_taken_in_while_redis_was_away_is_sent_once_redis_is_back(
    redis_url: str,
) -> None:
    parts = urlsplit(redis_url)
    proxy = Proxy((parts.hostname or "127.0.0.1", parts.port or 6379))
    await proxy.start()
    client = aioredis.from_url(f"redis://127.0.0.1:{proxy.port}{parts.path}")
    handler = _Recorder()
    loop = SenderLoop(
        handler,
        broker=None,  # type: ignore[arg-type]  # nothing here goes to the broker
        state=RedisSenderState(client, sent_ttl=60),
        delivery_log=DeliveryLog(None, flush_interval=1.0),
        preferences=PreferenceReader(None, ttl=60),
        config=LoopConfig(exchange=f"outage-{uuid.uuid4().hex[:8]}", retry_delays=[1.0]),
    )
    item = make_item("email", "alice@example.org")
    delivery = _Delivery(item)
    try:
        proxy.set_cut(True)
        await loop.intake(delivery)  # type: ignore[arg-type]
        pending = await loop._next()
        assert pending.already_sent is not None
        with pytest.raises(Exception):  # noqa: B017 - whatever Redis's client raised
            await pending.already_sent  # Redis could not answer at intake
        proxy.set_cut(False)

        await loop._send(pending)
        for task in list(loop._finishing):
            await task

        assert handler.sent == [item.key]
        assert delivery.settled == ["ack"]
        assert await client.get(f"fmn:senders:sent:{item.key}") == b"1"
    finally:
        await client.delete(f"fmn:senders:sent:{item.key}")
        await client.aclose()
        await proxy.close()

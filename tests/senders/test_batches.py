"""Several work items in one AMQP message, as the consumer publishes them: each is sent (or
retried, dead-lettered, held) on its own, and the message is acked once all are settled. A
message given back comes back whole; what was sent or dead-lettered of it is not done again."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from fmn.core.settings import Settings
from fmn.db.models import DeliveryStatus, DigestMode, User, UserSettings
from fmn.sendqueue.topology import dead_letter_queue, send_queue
from fmn.sendqueue.workitem import split, unpack
from fmn.transport import Broker, make_broker
from tests.harness.smtp_server import SMTPServer
from tests.senders.conftest import running
from tests.senders.helpers import delivery_log, eventually, make_item, publish


@pytest.fixture
async def digest_user(pg_url: str) -> AsyncIterator[str]:
    """A committed user on an hourly digest, deleted afterwards."""
    name = f"batch-{uuid.uuid4().hex[:8]}"
    engine = create_async_engine(pg_url, poolclass=NullPool)
    async with engine.begin() as conn:
        user_id = (
            await conn.execute(insert(User).values(name=name).returning(User.id))
        ).scalar_one()
        await conn.execute(
            insert(UserSettings).values(user_id=user_id, digest_mode=DigestMode.HOURLY)
        )
    yield name
    async with engine.begin() as conn:
        await conn.execute(delete(User).where(User.name == name))
    await engine.dispose()


async def _queue_size_after_reconnect(amqp_url: str, queue: str) -> int:
    """Ready messages, counted on a new connection (an unacked one would be back by then)."""
    broker = make_broker(amqp_url, "fmn tests (count)")
    await broker.connect()
    try:
        return await broker.queue_size(queue)
    finally:
        await broker.close()


async def test_the_message_is_settled_when_all_its_parts_are(
    amqp_url: str, broker: Broker, exchange: str
) -> None:
    queue = send_queue(exchange, "email")
    items = [make_item("email", f"u{i}@example.org") for i in range(3)]
    await publish(broker, exchange, *items, per_message=3)
    message = await eventually(lambda: broker.get(queue))
    parts = split(message)
    assert [p.body for p in parts] == [i.to_bytes() for i in items]
    await parts[0].ack()
    await parts[2].ack()
    await parts[1].nack(requeue=True)  # one part given back: the whole message comes back
    again = await eventually(lambda: broker.get(queue))
    assert again.redelivered and unpack(again.body) == [i.to_bytes() for i in items]
    again_parts = split(again)
    for part in again_parts:
        await part.ack()
    await again_parts[0].ack()  # settling a part twice changes nothing
    await broker.close()
    assert await _queue_size_after_reconnect(amqp_url, queue) == 0


async def test_each_item_of_a_message_has_its_own_outcome(
    amqp_url: str,
    email_settings: Settings,
    broker: Broker,
    smtp: SMTPServer,
    exchange: str,
    pg_url: str,
) -> None:
    smtp.sink.refuse.add("gone@example.org")
    sent = [make_item("email", "alice@example.org"), make_item("email", "bob@example.org")]
    refused = make_item("email", "gone@example.org")  # 550: permanent
    bad = make_item("email", "not an address")
    async with running("email", email_settings):
        await publish(broker, exchange, sent[0], refused, bad, sent[1], per_message=10)
        await eventually(lambda: len(smtp.received) == 2)
        dead = await eventually(
            lambda: delivery_log(pg_url, idempotency_key=[refused.key, bad.key])
        )
        await eventually(lambda: broker.queue_size(dead_letter_queue(exchange, "email")))
    assert sorted(r.rcpt_tos[0] for r in smtp.received) == ["alice@example.org", "bob@example.org"]
    assert {r.status for r in dead} == {DeliveryStatus.DEAD}
    assert await broker.queue_size(dead_letter_queue(exchange, "email")) == 2
    assert await _queue_size_after_reconnect(amqp_url, send_queue(exchange, "email")) == 0


async def test_a_message_given_back_does_nothing_twice(
    amqp_url: str,
    email_settings: Settings,
    broker: Broker,
    smtp: SMTPServer,
    exchange: str,
    pg_url: str,
    redis_client: aioredis.Redis,
    digest_user: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="fmn.senders.loop")
    first = make_item("email", "alice@example.org")
    bad = make_item("email", "not an address")
    held = make_item("email", "carol@example.org", user=digest_user)
    last = make_item("email", "dave@example.org")
    # Redis refuses to hold carol's item (her held-items key is of the wrong type), so taking
    # it in fails and the message goes back, again and again, until the key is mended.
    blocker = f"fmn:senders:held:email:{held.address}"
    await redis_client.set(blocker, "not a hash")
    async with running("email", email_settings):
        await publish(broker, exchange, first, bad, held, last, per_message=10)
        # The message came back at least once: its dead-lettered item was recognised.
        await eventually(lambda: "passed on already" in caplog.text, timeout=15)
        assert "could not take in a work item" in caplog.text
        await redis_client.delete(blocker)
        await eventually(lambda: len(smtp.received) == 2)
        await eventually(
            lambda: delivery_log(pg_url, idempotency_key=held.key, status=DeliveryStatus.HELD)
        )
    assert sorted(r.rcpt_tos[0] for r in smtp.received) == ["alice@example.org", "dave@example.org"]
    assert await broker.queue_size(dead_letter_queue(exchange, "email")) == 1
    assert await _queue_size_after_reconnect(amqp_url, send_queue(exchange, "email")) == 0
    assert await redis_client.hlen(blocker) == 1  # carol's item is held for her digest
    logged = await delivery_log(pg_url, idempotency_key=[first.key, bad.key])
    assert sorted(r.status for r in logged) == sorted([DeliveryStatus.SENT, DeliveryStatus.DEAD])

"""`fmn sender web` killed with SIGKILL in the middle of its queue, then started again: every
notification is in its inbox exactly once (real RabbitMQ, Redis and PostgreSQL)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import uuid
from collections import Counter
from pathlib import Path

import redis.asyncio as aioredis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from fmn.db.models import InboxEntry, User
from fmn.db.session import make_sessionmaker
from fmn.sendqueue.topology import send_queue
from fmn.transport import Broker
from tests.senders.helpers import eventually, make_item, publish
from tests.senders.test_restart import start_sender, write_config

TOTAL = 1500


async def test_killed_mid_queue_loses_and_doubles_nothing(
    amqp_url: str,
    redis_url: str,
    pg_url: str,
    exchange: str,
    broker: Broker,
    tmp_path: Path,
    redis_client: aioredis.Redis,
) -> None:
    engine = create_async_engine(pg_url, poolclass=NullPool)
    sessionmaker = make_sessionmaker(engine)
    names = [f"k{uuid.uuid4().hex[:10]}" for _ in range(5)]
    async with sessionmaker() as session, session.begin():
        session.add_all(User(name=name) for name in names)
    async with sessionmaker() as session:
        user_ids = list(await session.scalars(select(User.id).where(User.name.in_(names))))

    async def stored() -> int:
        async with sessionmaker() as session:
            query = select(func.count()).where(InboxEntry.user_id.in_(user_ids))
            return int(await session.scalar(query) or 0)

    config = write_config(tmp_path / "fmn.toml", amqp_url, redis_url, pg_url, exchange, 25)
    log = tmp_path / "sender.log"
    items = [make_item("web", names[i % 5], user=names[i % 5]) for i in range(TOTAL)]
    process: subprocess.Popen[bytes] | None = None
    try:
        await publish(broker, exchange, *items, per_message=10)
        process = first = start_sender(config, log, "web")
        await eventually(lambda: _at_least(stored, TOTAL // 5), timeout=120, interval=0.01)
        first.send_signal(signal.SIGKILL)
        first.wait()
        at_kill = await stored()
        assert at_kill < TOTAL, "the queue was done before the kill: nothing was tested"
        assert await broker.queue_size(send_queue(exchange, "web")) > 0

        process = start_sender(config, log, "web")
        try:
            await eventually(lambda: _at_least(stored, TOTAL), timeout=180)
        except AssertionError:
            raise AssertionError(f"{await stored()} stored; " + log.read_text()[-3000:]) from None
        await eventually(lambda: _queue_empty(broker, exchange), timeout=60)
        await asyncio.sleep(0.5)  # a late duplicate would show now
    finally:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)

    async with sessionmaker() as session:
        rows = (
            await session.execute(
                select(InboxEntry.message_id, InboxEntry.user_id).where(
                    InboxEntry.user_id.in_(user_ids)
                )
            )
        ).all()
    await engine.dispose()
    counts = Counter(message_id for message_id, _ in rows)
    assert set(counts) == {item.message.id for item in items}
    assert max(counts.values()) == 1
    assert process is not None and process.returncode == 0


async def _at_least(stored: object, n: int) -> bool:
    return await stored() >= n  # type: ignore[operator, no-any-return]


async def _queue_empty(broker: Broker, exchange: str) -> bool:
    return await broker.queue_size(send_queue(exchange, "web")) == 0

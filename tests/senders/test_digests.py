"""Held notifications become one digest: a burst past the threshold, a user's digest mode, a
mute. Held state lives in Redis, so a new sender picks up what an old one held."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from fmn.core.settings import Settings
from fmn.db.models import DeliveryStatus, DigestMode, User, UserSettings
from fmn.db.session import make_sessionmaker
from fmn.senders.loop import SenderLoop
from fmn.senders.service import loop_config, make_handler
from fmn.senders.state import DeliveryLog, HeldItem, PreferenceReader, RedisSenderState
from fmn.sendqueue.workitem import RuleRef
from fmn.transport import Broker
from tests.harness.smtp_server import Sink, SMTPServer
from tests.senders.conftest import running, sender_settings
from tests.senders.helpers import delivery_log, eventually, make_item, publish


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
async def user(pg_url: str) -> AsyncIterator[str]:
    """A committed user, deleted afterwards (the sender reads settings on its own connection)."""
    name = f"digest-{uuid.uuid4().hex[:8]}"
    engine = create_async_engine(pg_url, poolclass=NullPool)
    async with engine.begin() as conn:
        await conn.execute(insert(User).values(name=name))
    yield name
    async with engine.begin() as conn:
        await conn.execute(delete(User).where(User.name == name))
    await engine.dispose()


async def set_user_settings(pg_url: str, name: str, **values: Any) -> None:
    engine = create_async_engine(pg_url, poolclass=NullPool)
    async with make_sessionmaker(engine)() as session, session.begin():
        user_id = await session.scalar(select(User.id).where(User.name == name))
        session.add(UserSettings(user_id=user_id, **values))
    await engine.dispose()


@contextlib.asynccontextmanager
async def loop_with_clock(
    settings: Settings, broker: Broker, redis_client: aioredis.Redis, clock: Clock
) -> AsyncIterator[SenderLoop]:
    engine = create_async_engine(settings.database.url, poolclass=NullPool)
    sessionmaker = make_sessionmaker(engine)
    log = DeliveryLog(sessionmaker, 0.1)
    log.start()
    state = RedisSenderState(redis_client, 3600)
    handler = make_handler("email", settings, state, sessionmaker)
    loop = SenderLoop(
        handler, broker, state, log, PreferenceReader(sessionmaker, 0), loop_config(settings), clock
    )
    task = asyncio.create_task(loop.run())
    try:
        yield loop
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await handler.stop()
        await log.close()
        await engine.dispose()


async def test_hourly_digest(
    email_settings: Settings,
    broker: Broker,
    smtp: SMTPServer,
    exchange: str,
    pg_url: str,
    redis_client: aioredis.Redis,
    user: str,
) -> None:
    await set_user_settings(pg_url, user, digest_mode=DigestMode.HOURLY)
    clock = Clock(dt.datetime(2024, 5, 1, 10, 20, tzinfo=dt.UTC))
    items = [make_item("email", "carol@example.org", user=user) for _ in range(3)]
    async with loop_with_clock(email_settings, broker, redis_client, clock) as loop:
        await publish(broker, exchange, *items)
        await eventually(lambda: loop.state.held_count("email", "carol@example.org"))
        await eventually(lambda: delivery_log(pg_url, user_name=user, status=DeliveryStatus.HELD))
        await eventually(lambda: _count_held(loop, 3))
        await loop.flush_due()
        assert smtp.received == []
        clock.now = dt.datetime(2024, 5, 1, 11, 0, 1, tzinfo=dt.UTC)
        await eventually(lambda: smtp.received)
    [mail] = smtp.received
    msg = mail.message
    assert msg["Subject"] == "[Fedora Notifications] 3 notifications"
    assert msg["X-Fedora-Notify-Digest"] == "3"
    assert msg["List-Unsubscribe"]  # all three come from one rule
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "your hourly digest" in text
    for item in items:
        assert item.message.summary in text
    rows = await eventually(
        lambda: delivery_log(pg_url, user_name=user, status=DeliveryStatus.DIGESTED)
    )
    assert sorted(r.idempotency_key for r in rows) == sorted(i.key for i in items)
    assert await redis_client.keys("fmn:senders:held:*") == []


async def _count_held(loop: SenderLoop, n: int) -> bool:
    return await loop.state.held_count("email", "carol@example.org") == n


async def test_muted_then_delivered_by_a_new_sender(
    email_settings: Settings,
    broker: Broker,
    smtp: SMTPServer,
    exchange: str,
    pg_url: str,
    redis_client: aioredis.Redis,
    user: str,
) -> None:
    """Held state survives the sender: the one that holds is not the one that delivers."""
    now = dt.datetime.now(dt.UTC)
    await set_user_settings(pg_url, user, muted_until=now + dt.timedelta(minutes=30))
    items = [make_item("email", "carol@example.org", user=user) for _ in range(2)]
    clock = Clock(now)
    async with loop_with_clock(email_settings, broker, redis_client, clock) as loop:
        await publish(broker, exchange, *items)
        await eventually(lambda: _count_held(loop, 2))
    clock.now = now + dt.timedelta(minutes=31)
    async with loop_with_clock(email_settings, broker, redis_client, clock):
        await eventually(lambda: smtp.received)
    [mail] = smtp.received
    text = mail.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "held while notifications were muted" in text


async def test_a_burst_collapses_into_one_digest(
    amqp_url: str,
    redis_url: str,
    pg_url: str,
    exchange: str,
    broker: Broker,
    redis_client: aioredis.Redis,
) -> None:
    smtp = SMTPServer(Sink(delay=0.2))  # a slow server: the backlog builds up
    smtp.start()
    settings = sender_settings(
        amqp_url,
        redis_url,
        pg_url,
        exchange,
        digest_threshold=3,
        email={"smtp_port": smtp.port, "connections": 1},
    )
    flood = [make_item("email", "dave@example.org") for _ in range(12)]
    other = make_item("email", "erin@example.org")
    try:
        async with running("email", settings):
            await publish(broker, exchange, *flood, other)
            await eventually(lambda: [r for r in smtp.received if b"Digest" in r.data])
            await asyncio.sleep(0.5)
    finally:
        smtp.stop()
    to_dave = [r.message for r in smtp.received if r.rcpt_tos == ["dave@example.org"]]
    # The first ones one by one (the threshold's three, one more if the first was already sent
    # when the fourth came in), and one digest with all the others.
    [digest] = [m for m in to_dave if m["X-Fedora-Notify-Digest"]]
    singles = [m["Subject"] for m in to_dave if m is not digest]
    assert 3 <= len(singles) <= 4
    subjects = [i.email.subject for i in flood]  # type: ignore[union-attr]
    assert sorted(singles) == sorted(subjects[: len(singles)])
    rest = flood[len(singles) :]
    assert digest["Subject"] == f"[Fedora Notifications] {len(rest)} notifications"
    text = digest.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "more notifications arrived than can be sent one by one" in text
    assert all(i.message.summary in text for i in rest)
    order = [r.rcpt_tos for r in smtp.received]
    assert order.index(["erin@example.org"]) < len(singles)


async def test_a_teams_items_held_before_the_team_field_make_the_groups_digest(
    email_settings: Settings, smtp: SMTPServer, redis_url: str, redis_client: aioredis.Redis
) -> None:
    """Items held for a digest by a sender of before work items carried `team` (only the
    owner's name, group:<name>) are still framed as the group's: no unsubscribe link, the
    group's footer."""
    address = "python-devel@lists.example.org"
    items = [
        make_item("email", address, user="group:python-sig", rules=[RuleRef(id=7, name="Builds")])
        for _ in range(2)
    ]
    state = RedisSenderState.from_url(redis_url, 3600)
    now = dt.datetime.now(dt.UTC).timestamp()
    try:
        for item in items:
            await state.hold("email", HeldItem(item, "quiet-hours", now), now)
    finally:
        await state.close()
    # As the earlier sender wrote them: the items without the field.
    [held_key] = await redis_client.keys("*held*python-devel*")
    for key, value in (await redis_client.hgetall(held_key)).items():
        written = json.loads(value)
        assert written["item"].pop("team") == "python-sig"
        await redis_client.hset(held_key, key, json.dumps(written))
    async with running("email", email_settings):
        await eventually(lambda: smtp.received)
    [mail] = smtp.received
    assert mail.message["List-Unsubscribe"] is None
    text = mail.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "2 notifications" in text
    assert "because of the rule(s) of the group python-sig:" in text

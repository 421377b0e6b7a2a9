"""The web sender stores each notification in its user's inbox, once, and tells the streams."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from fmn.core.settings import Settings
from fmn.db.models import InboxEntry, InboxEntryRule, UserSettings
from fmn.db.session import make_sessionmaker
from fmn.inbox import store
from fmn.inbox.events import make_events
from fmn.sendqueue.topology import dead_letter_queue
from fmn.sendqueue.workitem import RuleRef
from fmn.transport import Broker
from tests.factories import make_rule, make_user
from tests.senders.conftest import running, sender_settings
from tests.senders.helpers import eventually, make_item, publish, queue_has


@pytest.fixture
def web_settings(
    amqp_url: str, redis_url: str, pg_url: str, exchange: str, redis_client: aioredis.Redis
) -> Settings:
    return sender_settings(amqp_url, redis_url, pg_url, exchange)


@pytest.fixture
async def sessionmaker(pg_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_async_engine(pg_url, poolclass=NullPool)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def new_user(sessionmaker: async_sessionmaker[AsyncSession]) -> tuple[str, int, int]:
    """A user with a rule: (name, user id, rule id)."""
    name = f"u{uuid.uuid4().hex[:10]}"
    async with sessionmaker() as session, session.begin():
        user = await make_user(session, name)
        rule = await make_rule(session, user, name="My packages", destinations=[("web", name)])
        return name, user.id, rule.id


async def inbox(
    sessionmaker: async_sessionmaker[AsyncSession], user_id: int
) -> list[store.InboxEntryPublic]:
    async with sessionmaker() as session:
        return await store.entries(session, user_id)


async def test_a_notification_lands_in_the_inbox_once(
    web_settings: Settings,
    broker: Broker,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    name, user_id, rule_id = await new_user(sessionmaker)
    item = make_item(
        "web", name, user=name, rules=[RuleRef(id=rule_id, name="My packages"), RuleRef(id=10**9)]
    )
    events = make_events(web_settings.cache.url)
    await events.start()
    try:
        with events.hub.listen(name) as listener:
            async with running("web", web_settings):
                # The same work item twice, as after a redelivery.
                await publish(broker, web_settings.send_queue.exchange, item, item)
                found = await eventually(lambda: inbox(sessionmaker, user_id))
                assert await asyncio.wait_for(listener.wait(), 30) == (True, False)
                await eventually(
                    lambda: queue_has(broker, f"{web_settings.send_queue.exchange}.web", 0)
                )
                await asyncio.sleep(0.5)  # the copy is settled by now
    finally:
        await events.close()
    found = await inbox(sessionmaker, user_id)
    assert len(found) == 1
    entry = found[0]
    assert entry.subject == item.web.subject and entry.text == item.web.text  # type: ignore[union-attr]
    assert entry.link == item.message.url and entry.application == "koji"
    assert entry.message_id == item.message.id and entry.message_time == item.message.sent_at
    assert entry.topic == item.message.topic and entry.read is False
    # A rule deleted since (no such id) shows without its name.
    assert [(r.id, r.name) for r in entry.rules] == [(rule_id, "My packages"), (10**9, None)]


async def test_someone_elses_inbox_and_unknown_users_are_dead_letters(
    web_settings: Settings, broker: Broker, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    name, user_id, _ = await new_user(sessionmaker)
    foreign = make_item("web", "someoneelse", user=name)
    ghost = make_item("web", "ghost-user-x", user="ghost-user-x")
    not_a_name = make_item("web", "not a name", user=name)
    good = make_item("web", name, user=name)
    dlq = dead_letter_queue(web_settings.send_queue.exchange, "web")
    async with running("web", web_settings):
        await publish(broker, web_settings.send_queue.exchange, foreign, ghost, not_a_name, good)
        await eventually(lambda: queue_has(broker, dlq, 3))
        await eventually(lambda: inbox(sessionmaker, user_id))
    assert [e.message_id for e in await inbox(sessionmaker, user_id)] == [good.message.id]


async def test_the_inbox_is_filled_at_once_in_quiet_hours_and_in_a_burst(
    web_settings: Settings, broker: Broker, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    name, user_id, _ = await new_user(sessionmaker)
    async with sessionmaker() as session, session.begin():
        session.add(
            UserSettings(user_id=user_id, muted_until=dt.datetime(2999, 1, 1, tzinfo=dt.UTC))
        )
    burst = [make_item("web", name, user=name) for _ in range(50)]  # past digest_threshold
    async with running("web", web_settings):
        await publish(broker, web_settings.send_queue.exchange, *burst, per_message=10)
        await eventually(lambda: _count(sessionmaker, user_id, 50))


async def _count(sessionmaker: async_sessionmaker[AsyncSession], user_id: int, n: int) -> bool:
    async with sessionmaker() as session:
        return await store.count(session, user_id) == n


async def test_entries_past_the_retention_period_are_pruned_in_batches(
    web_settings: Settings, broker: Broker, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    name, user_id, _ = await new_user(sessionmaker)
    items = [make_item("web", name, user=name) for _ in range(5)]
    async with running("web", web_settings):
        await publish(broker, web_settings.send_queue.exchange, *items)
        await eventually(lambda: _count(sessionmaker, user_id, 5))
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=91)
    async with sessionmaker() as session, session.begin():
        ids = sorted(
            (
                await session.scalars(select(InboxEntry.id).where(InboxEntry.user_id == user_id))
            ).all()
        )
        await session.execute(
            update(InboxEntry).where(InboxEntry.id.in_(ids[:3])).values(created_at=old)
        )
    assert await store.prune(sessionmaker, 90, batch_size=2) == (3, 2)
    assert [e.id for e in await inbox(sessionmaker, user_id)] == ids[:2:-1]
    # The rules that fired for pruned entries went with them.
    async with sessionmaker() as session:
        left = (
            select(func.count()).select_from(InboxEntryRule).where(InboxEntryRule.entry_id.in_(ids))
        )
        assert await session.scalar(left) == 2

"""Web Push from the web sender, through pywebpush to a push-service stand-in that checks the
VAPID signature and decrypts the payload with the subscription's keys (tests/harness)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from fmn.core.settings import Settings
from fmn.db.models import DeliveryStatus, PushSubscription
from fmn.db.session import make_sessionmaker
from fmn.inbox import store
from fmn.inbox.vapid import load_key, new_private_key, public_key
from fmn.transport import Broker
from tests.harness.push_service import PushService
from tests.senders.conftest import running, sender_settings
from tests.senders.helpers import delivery_log, eventually, make_item, publish
from tests.senders.test_web import new_user

VAPID_KEY = new_private_key()


@pytest.fixture
def push_service() -> Iterator[PushService]:
    service = PushService(public_key(load_key(VAPID_KEY)))
    service.start()
    yield service
    service.stop()


@pytest.fixture
def web_settings(
    amqp_url: str, redis_url: str, pg_url: str, exchange: str, redis_client: aioredis.Redis
) -> Settings:
    settings = sender_settings(amqp_url, redis_url, pg_url, exchange)
    web = settings.web.model_copy(
        update={
            "vapid_private_key": VAPID_KEY,
            "vapid_subject": "mailto:ops@example.org",
            # The stand-in listens on 127.0.0.1, which production refuses.
            "push_allow_private_hosts": True,
        }
    )
    return settings.model_copy(update={"web": web})


@pytest.fixture
async def sessionmaker(pg_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_async_engine(pg_url, poolclass=NullPool)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def subscribe(
    sessionmaker: async_sessionmaker[AsyncSession],
    service: PushService,
    user_id: int,
    *devices: str,
    host: str = "127.0.0.1",
) -> None:
    """Subscriptions stored as the API would have kept them, their endpoints on `host` (the
    stand-in's address, or a name for it)."""
    async with sessionmaker() as session, session.begin():
        for device in devices:
            service.subscribe(device)
            browser = service.browser_json(device)
            session.add(
                PushSubscription(
                    user_id=user_id,
                    endpoint=browser["endpoint"].replace("127.0.0.1", host),
                    p256dh=browser["keys"]["p256dh"],
                    auth=browser["keys"]["auth"],
                    device=device,
                    created_at=dt.datetime.now(dt.UTC),
                )
            )


async def endpoints(sessionmaker: async_sessionmaker[AsyncSession], user_id: int) -> list[str]:
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(PushSubscription.device).where(PushSubscription.user_id == user_id)
        )
        return sorted(rows)


@dataclass
class Pushing:
    settings: Settings
    broker: Broker
    sessionmaker: async_sessionmaker[AsyncSession]
    service: PushService


@pytest.fixture
def pushing(
    web_settings: Settings,
    broker: Broker,
    sessionmaker: async_sessionmaker[AsyncSession],
    push_service: PushService,
) -> Pushing:
    return Pushing(web_settings, broker, sessionmaker, push_service)


async def test_a_push_reaches_every_browser_decryptable_with_its_keys(pushing: Pushing) -> None:
    web_settings, broker = pushing.settings, pushing.broker
    sessionmaker, push_service = pushing.sessionmaker, pushing.service
    name, user_id, _ = await new_user(sessionmaker)
    laptop, phone = f"{name}-laptop", f"{name}-phone"
    await subscribe(sessionmaker, push_service, user_id, laptop, phone)
    item = make_item("web", name, user=name, summary="build 7 of foo completed")
    async with running("web", web_settings):
        # Twice, as after a redelivery: one entry, one push per browser.
        await publish(broker, web_settings.send_queue.exchange, item, item)
        await eventually(lambda: push_service.pushes(laptop) and push_service.pushes(phone))
        await asyncio.sleep(0.5)
    assert push_service.refused == []
    async with sessionmaker() as session:
        [entry] = await store.entries(session, user_id)
    for device in (laptop, phone):
        [push] = push_service.pushes(device)
        assert push.payload == {
            "title": item.web.subject,  # type: ignore[union-attr]
            "body": item.web.text,  # type: ignore[union-attr]
            "url": item.message.url,
            "id": entry.id,
        }
        assert push.ttl == str(web_settings.web.push_ttl)


async def test_gone_subscriptions_are_removed_and_failures_lose_no_entry(
    pushing: Pushing,
) -> None:
    web_settings, broker = pushing.settings, pushing.broker
    sessionmaker, push_service = pushing.sessionmaker, pushing.service
    name, user_id, _ = await new_user(sessionmaker)
    devices = [f"{name}-{n}" for n in ("gone", "expired", "broken", "fine")]
    await subscribe(sessionmaker, push_service, user_id, *devices)
    push_service.answers.update({devices[0]: 404, devices[1]: 410, devices[2]: 500})
    items = [make_item("web", name, user=name) for _ in range(2)]
    async with running("web", web_settings):
        await publish(broker, web_settings.send_queue.exchange, *items)
        await eventually(lambda: len(push_service.pushes(devices[3])) == 2)
        await eventually(lambda: _devices_are(sessionmaker, user_id, sorted(devices[2:])))
    async with sessionmaker() as session:
        assert await store.count(session, user_id) == 2


async def _devices_are(
    sessionmaker: async_sessionmaker[AsyncSession], user_id: int, expected: list[str]
) -> bool:
    return await endpoints(sessionmaker, user_id) == expected


async def test_no_push_goes_to_a_private_host_unless_allowed(
    pushing: Pushing, pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Subscriptions kept while their hosts were public, now an IP literal and a name that
    resolve only to a loopback address (as after a DNS change): with web.push_allow_private_hosts
    off (the default), the web sender connects to neither, logs why, and the entry is stored."""
    settings, broker = pushing.settings, pushing.broker
    sessionmaker, push_service = pushing.sessionmaker, pushing.service
    web = settings.web.model_copy(update={"push_allow_private_hosts": False})
    settings = settings.model_copy(update={"web": web})
    name, user_id, _ = await new_user(sessionmaker)
    await subscribe(sessionmaker, push_service, user_id, f"{name}-literal")
    await subscribe(sessionmaker, push_service, user_id, f"{name}-named", host="localhost")
    item = make_item("web", name, user=name)
    caplog.set_level(logging.WARNING, logger="fmn.inbox.push")
    async with running("web", settings):
        await publish(broker, settings.send_queue.exchange, item)

        async def delivered() -> bool:
            return [row.status for row in await delivery_log(pg_url, idempotency_key=item.key)] == [
                DeliveryStatus.SENT
            ]

        await eventually(delivered)  # logged once the push was tried
    assert push_service.received == []
    refusals = [r.getMessage() for r in caplog.records if "refused, not sent" in r.getMessage()]
    assert len(refusals) == 2, refusals
    assert any("127.0.0.1 has no public address" in r for r in refusals)
    assert any("localhost has no public address" in r for r in refusals)
    async with sessionmaker() as session:
        assert await store.count(session, user_id) == 1


async def test_without_a_vapid_key_there_is_no_push_and_the_inbox_fills(
    amqp_url: str,
    redis_url: str,
    pg_url: str,
    exchange: str,
    broker: Broker,
    sessionmaker: async_sessionmaker[AsyncSession],
    push_service: PushService,
) -> None:
    settings = sender_settings(amqp_url, redis_url, pg_url, exchange)
    name, user_id, _ = await new_user(sessionmaker)
    await subscribe(sessionmaker, push_service, user_id, f"{name}-laptop")
    async with running("web", settings):
        await publish(broker, exchange, make_item("web", name, user=name))

        async def stored() -> bool:
            async with sessionmaker() as session:
                return await store.count(session, user_id) == 1

        await eventually(stored)
    assert push_service.received == []


async def test_the_stand_in_refuses_a_push_signed_with_another_key(
    push_service: PushService,
) -> None:
    """The stand-in's checks can fail: what the tests above pass is worth something."""
    from pywebpush import WebPushException, webpush_async

    push_service.subscribe("x")
    with pytest.raises(WebPushException) as caught:
        await webpush_async(
            push_service.browser_json("x"),
            "{}",
            vapid_private_key=load_key(new_private_key()),
            vapid_claims={"sub": "mailto:ops@example.org"},
        )
    assert caught.value.response.status == 401
    assert push_service.refused == ["not the application server's key"]

"""A real consumer on real RabbitMQ and PostgreSQL, with a directory the test can change."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.pool import NullPool

from fmn.consumer.service import Consumer
from fmn.core.settings import Settings
from fmn.db import migrations
from fmn.db.session import make_sessionmaker
from fmn.directory.base import DirectoryUnavailable
from fmn.directory.local import DirectoryData, LocalDirectory
from fmn.rules import schema, transfer
from fmn.sendqueue.topology import send_queue
from fmn.sendqueue.workitem import WorkItem, unpack
from fmn.transport import Broker, Outgoing, make_broker
from tests.harness import services

DIRECTORY = {
    "users": {
        "alice": {"username": "alice", "emails": ["alice@example.org"], "ircnicks": ["alice"]},
        "bob": {"username": "bob", "emails": ["bob@example.org"], "ircnicks": []},
        "ralph": {"username": "ralph", "emails": ["ralph@example.org"], "ircnicks": []},
    },
    "groups": {"python-sig": {"members": ["bob"], "sponsors": []}},
    "projects": {
        "rpms/tzdata": {"access_users": {"owner": ["alice"]}, "access_groups": {}},
        "rpms/chromium": {"access_users": {"owner": ["spot"]}, "access_groups": {}},
    },
}


class SwitchableDirectory:
    """A LocalDirectory the test can replace, or make fail, while the consumer runs."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.local = LocalDirectory(DirectoryData.model_validate(data))
        self.failing = False
        self.broken = False  # raise what no caller expects: a bug, not an outage
        self.calls = 0

    def replace(self, data: dict[str, Any]) -> None:
        self.local = LocalDirectory(DirectoryData.model_validate(data))

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        target = getattr(self.local, name)

        async def call(*args: Any) -> Any:
            self.calls += 1
            if self.failing:
                raise DirectoryUnavailable(f"{name}: the directory is down")
            if self.broken:
                raise RuntimeError(f"{name}: a bug in the directory client")
            return await target(*args)

        return call


@pytest.fixture(scope="session")
def consumer_db_url() -> Iterator[str]:
    name = f"{services.pg_database_name()}_consumer"
    url = services.recreate_database(name)
    migrations.upgrade(url)
    yield url
    services.drop_database(name)


@pytest.fixture
async def sessionmaker(consumer_db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine: AsyncEngine = create_async_engine(consumer_db_url, poolclass=NullPool)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "TRUNCATE users, rules, generated, archived_messages, deliveries "
                "RESTART IDENTITY CASCADE"
            )
        )
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
def directory() -> SwitchableDirectory:
    return SwitchableDirectory(DIRECTORY)


@pytest.fixture
def consumer_settings(amqp_url: str, consumer_db_url: str) -> Settings:
    unique = uuid.uuid4().hex[:8]
    return Settings(
        public_url="https://notifications.example.org",
        database={"url": consumer_db_url},
        bus={"amqp_url": amqp_url, "queue": f"fmn-{unique}"},
        send_queue={"amqp_url": amqp_url, "exchange": f"fmn.send.{unique}", "retry_delays": [1]},
        consumer={"retry_delay": 0.2, "counts_interval": 0.2, "unmute_interval": 0.2},
    )


@pytest.fixture
async def start_consumer(
    consumer_settings: Settings,
    directory: SwitchableDirectory,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[Callable[..., Awaitable[Consumer]]]:
    running: list[tuple[Consumer, asyncio.Task[None]]] = []

    async def start(name: str = "test consumer") -> Consumer:
        consumer = Consumer(
            consumer_settings,
            directory=directory,  # type: ignore[arg-type]
            sessionmaker=sessionmaker,
            bus=make_broker(consumer_settings.bus.amqp_url, name),
            send=make_broker(consumer_settings.send_queue.amqp_url, name),
            name=name,
        )
        await consumer.start()
        running.append((consumer, asyncio.create_task(consumer.run())))
        return consumer

    yield start
    for consumer, task in running:
        await consumer.stop()
        await asyncio.wait_for(task, 10)


@pytest.fixture
async def client_broker(amqp_url: str) -> AsyncIterator[Broker]:
    broker = make_broker(amqp_url, "test client")
    await broker.connect()
    yield broker
    await broker.close()


async def publish(broker: Broker, message: dict[str, Any], body: bytes | None = None) -> str:
    """Put a message on the bus as fedora-messaging publishers do."""
    message_id = message.get("id") or str(uuid.uuid4())
    await broker.publish(
        "amq.topic",
        Outgoing(
            message["topic"],
            body if body is not None else json.dumps(message["body"]).encode(),
            message_id=message_id,
            headers=message.get("headers") or {},
        ),
    )
    return message_id


async def work_items(
    broker: Broker, settings: Settings, protocol: str, count: int, timeout: float = 10
) -> list[WorkItem]:
    """Take `count` work items from a protocol's queue, waiting for them to arrive."""
    queue = send_queue(settings.send_queue.exchange, protocol)
    items: list[WorkItem] = []
    async with asyncio.timeout(timeout):
        while len(items) < count:
            delivery = await broker.get(queue)
            if delivery is None:
                await asyncio.sleep(0.05)
                continue
            items.extend(WorkItem.from_bytes(body) for body in unpack(delivery.body))
            await delivery.ack()
    return items


async def add_rules(sessionmaker: async_sessionmaker[AsyncSession], *rules: dict[str, Any]) -> None:
    async with sessionmaker() as session, session.begin():
        await transfer.import_rules(session, [schema.Rule.model_validate(r) for r in rules])


def rule(rule_id: int, owner: str, tracking: dict[str, Any], **filters: Any) -> dict[str, Any]:
    address = f"{owner}@example.org"
    return {
        "id": rule_id,
        "name": f"rule {rule_id}",
        "user": {"name": owner},
        "tracking_rule": tracking,
        "generation_rules": [
            {"destinations": [{"protocol": "email", "address": address}], "filters": filters}
        ],
    }

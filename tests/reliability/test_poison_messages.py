"""Messages that once stopped the consumer for good (found by tests/reliability/test_bad_input.py
and the soak): header values JSON cannot carry, NaN, NUL characters and lone surrogates (the
archive's INSERT failed, and the batch was tried again forever), and an id so long that its work
item's AMQP message id no longer fit in 255 bytes (the publish raised, the consumer stopped, and
started again it took the same message first). A database outage, on the other hand, must make
the batch wait, without publishing its work items again and again."""

from __future__ import annotations

import asyncio
import decimal
import json
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.soak_proxy import Proxy
from fmn.archive import (
    archive_batch,
    storable_json_text,
    storable_message_json,
    storable_text,
)
from fmn.core.settings import Settings
from fmn.db import models
from fmn.rules.incoming import parse_message
from fmn.sendqueue.topology import send_queue
from fmn.transport import Broker, Outgoing
from tests.consumer.conftest import SwitchableDirectory, add_rules, rule, work_items
from tests.reliability.conftest import consumer_on

pytestmark = pytest.mark.xdist_group("reliability")

FOLLOWS_FOO = {"name": "artifacts-followed", "params": [{"name": "foo", "type": "rpms"}]}


async def _archived(sessionmaker: async_sessionmaker[AsyncSession]) -> list[models.ArchivedMessage]:
    async with sessionmaker() as session:
        return list((await session.scalars(select(models.ArchivedMessage))).all())


async def _eventually(check: Any, timeout: float = 20) -> Any:
    async with asyncio.timeout(timeout):
        while not (result := await check()):
            await asyncio.sleep(0.05)
    return result


def test_storable_values() -> None:
    assert storable_text("a\x00b\ud800c") == "ab?c"
    data = {"h": {"d": decimal.Decimal("1.5"), "b": b"\xff", "n": float("nan")}, "x": [1, "y"]}
    assert json.loads(storable_json_text(data)) == {
        "h": {"d": 1.5, "b": "\ufffd", "n": "nan"},
        "x": [1, "y"],
    }
    plain = {"a": [1, 2.5, None, "\x00\ud800"]}
    # json takes NUL and surrogate escapes as they are
    assert storable_json_text(plain) == json.dumps(plain)


def test_a_body_is_stored_as_received_when_postgresql_takes_it() -> None:
    data = {"topic": "t", "headers": {"h": 1}, "id": "m", "body": {"a": "\u00e9\x00", "n": [1.5]}}
    raw = '{"a":"\u00e9\\u0000",  "n": [1.5]}'.encode()
    assert json.loads(raw) == data["body"]
    stored = storable_message_json(data, raw)
    assert raw.decode() in stored and json.loads(stored) == data
    # What PostgreSQL's json type refuses, or what is not UTF-8, is serialized anew.
    for body, received in [
        ({"n": "nan"}, b'{"n": NaN}'),
        ({"a": 1}, '{"a": 1}'.encode("utf-16")),
        ({"a": 1}, b'\xef\xbb\xbf{"a": 1}'),
    ]:
        message = {**data, "body": body}
        assert storable_message_json(message, received) == storable_json_text(message)
    assert storable_message_json(data, None) == storable_json_text(data)


async def test_values_postgresql_refuses_are_archived_and_notified(
    start_consumer: Any,
    client_broker: Broker,
    consumer_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await add_rules(sessionmaker, rule(1, "alice", FOLLOWS_FOO))
    await start_consumer()
    headers = {
        "fedora_messaging_rpm_foo": True,
        "fedora_messaging_user_bo\x00b": True,
        "price": decimal.Decimal("9.99"),  # bytes too, but aio-pika cannot send them
    }
    body = b'{"nan": NaN, "text": "\\u0000 \\ud800"}'
    await client_broker.publish(
        "amq.topic", Outgoing("org.example.odd\x00topic", body, message_id="odd-1", headers=headers)
    )
    (item,) = await work_items(client_broker, consumer_settings, "email", 1, timeout=20)
    assert item.message.id == "odd-1"
    (row,) = await _eventually(lambda: _archived(sessionmaker))
    assert row.topic == "org.example.oddtopic"
    assert row.data["headers"]["price"] == 9.99
    assert row.data["body"]["nan"] == "nan"


async def test_a_message_id_too_long_for_amqp_does_not_stop_the_consumer(
    start_consumer: Any,
    client_broker: Broker,
    consumer_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await add_rules(sessionmaker, rule(1, "alice", FOLLOWS_FOO))
    consumer = await start_consumer()
    long_id = "é" * 120  # 240 bytes: fits a bus message, not id + "/email/alice@example.org"
    await client_broker.publish(
        "amq.topic",
        Outgoing(
            "org.example.x", b"{}", message_id=long_id, headers={"fedora_messaging_rpm_foo": True}
        ),
    )
    (item,) = await work_items(client_broker, consumer_settings, "email", 1, timeout=20)
    assert item.key == f"{long_id}/email/alice@example.org"
    assert not any(task.done() for task in consumer._tasks)


async def test_a_message_the_database_refuses_is_left_out_of_the_archive_only(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    good = {"topic": "t", "headers": {}, "id": "good", "body": {}}
    refused = {"topic": "t", "headers": {}, "id": "x" * 300, "body": {}}  # over String(255)
    messages = [(parse_message(m), m, None) for m in (good, refused)]
    assert await archive_batch(sessionmaker, messages) == 1
    assert [row.message_id for row in await _archived(sessionmaker)] == ["good"]
    # Alone, it is left out too (not raised, which the consumer would take for an outage and
    # try again for ever).
    assert await archive_batch(sessionmaker, messages[1:]) == 0


async def test_a_database_outage_waits_without_publishing_again(
    consumer_settings: Settings,
    consumer_db_url: str,
    client_broker: Broker,
    directory: SwitchableDirectory,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await add_rules(sessionmaker, rule(1, "alice", FOLLOWS_FOO))
    proxy = Proxy(("127.0.0.1", 5432))
    await proxy.start()
    consumer, engine = consumer_on(
        consumer_settings,
        directory,
        consumer_settings.bus.amqp_url,
        consumer_db_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}"),
        "outage consumer",
    )
    await consumer.start()
    task = asyncio.create_task(consumer.run())
    try:
        proxy.set_cut(True)
        await client_broker.publish(
            "amq.topic",
            Outgoing(
                "org.example.x", b"{}", message_id="m1", headers={"fedora_messaging_rpm_foo": True}
            ),
        )
        queue = send_queue(consumer_settings.send_queue.exchange, "email")
        await _eventually(lambda: client_broker.queue_size(queue))
        await asyncio.sleep(2)  # several archive attempts (retry_delay 0.2 s) fail meanwhile
        assert await client_broker.queue_size(queue) == 1  # published once, not once per attempt
        assert await _archived(sessionmaker) == []  # not skipped: waiting
        proxy.set_cut(False)
        (row,) = await _eventually(lambda: _archived(sessionmaker))
        assert row.message_id == "m1"

        async def bus_queue_settled() -> bool:
            return await client_broker.queue_size(consumer_settings.bus.queue) == 0

        await _eventually(bus_queue_settled)
        (item,) = await work_items(client_broker, consumer_settings, "email", 1)
        assert item.message.id == "m1"
    finally:
        await consumer.stop()
        await asyncio.wait_for(task, 10)
        await engine.dispose()
        await proxy.close()


async def test_a_control_message_nested_too_deep_is_ignored(
    start_consumer: Any,
    client_broker: Broker,
    consumer_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await add_rules(sessionmaker, rule(1, "alice", FOLLOWS_FOO))
    consumer = await start_consumer()
    deep = b"[" * 100_000  # json.loads: RecursionError, which stopped the control task
    await client_broker.publish("amq.topic", Outgoing("fas.user.update", deep, message_id="deep"))
    await client_broker.publish(
        "amq.topic",
        Outgoing(
            "org.example.x", b"{}", message_id="after", headers={"fedora_messaging_rpm_foo": True}
        ),
    )
    (item,) = await work_items(client_broker, consumer_settings, "email", 1, timeout=20)
    assert item.message.id == "after"
    await asyncio.sleep(0.5)
    assert not any(task.done() for task in consumer._tasks)

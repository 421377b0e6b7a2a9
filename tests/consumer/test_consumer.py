"""The consumer on real RabbitMQ and PostgreSQL: bus message in, confirmed work items out."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fmn.consumer.service import Consumer, ConsumerFailed
from fmn.core.settings import Settings
from fmn.db import models
from fmn.rules.incoming import parse_message
from fmn.sendqueue.topology import send_queue
from fmn.transport import Broker, make_broker
from tests.conftest import load_corpus
from tests.consumer.conftest import (
    DIRECTORY,
    SwitchableDirectory,
    add_rules,
    publish,
    rule,
    work_items,
)

KOJI = load_corpus("schema-tests-koji-fedoramessaging-messages.jsonl")
BODHI = load_corpus("schema-tests-bodhi-messages.jsonl")
TZDATA_EDIT = next(m for m in BODHI if m["topic"].endswith("update.edit"))  # agent ralph
CHROMIUM_BUILD = next(m for m in KOJI if m["topic"] == "buildsys.build.state.change")


async def wait_until(predicate: Any, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(0.05)


async def queue_empty(broker: Broker, queue: str) -> bool:
    return await broker.queue_size(queue) == 0


async def archived(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count(models.ArchivedMessage.id))) or 0)


async def test_owned_package_message_becomes_a_confirmed_work_item(
    start_consumer: Any,
    client_broker: Broker,
    consumer_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await add_rules(
        sessionmaker,
        rule(1, "alice", {"name": "artifacts-owned", "params": ["alice"]}),
        rule(2, "bob", {"name": "users-followed", "params": ["ralph"]}),
    )
    await start_consumer()
    message_id = await publish(client_broker, TZDATA_EDIT)

    items = await work_items(client_broker, consumer_settings, "email", 2)
    by_address = {item.address: item for item in items}
    assert set(by_address) == {"alice@example.org", "bob@example.org"}
    alice = by_address["alice@example.org"]
    assert alice.key == f"{message_id}/email/alice@example.org"
    assert [r.id for r in alice.rules] == [1]
    assert alice.message.id == message_id
    assert alice.message.topic == TZDATA_EDIT["topic"]
    assert alice.email is not None and "tzdata" in alice.email.subject
    # Archived with its match keys, counted per rule.
    await wait_until(lambda: archived(sessionmaker))
    async with sessionmaker() as session:
        rows = await session.execute(
            select(models.ArchivedMessageKey.kind, models.ArchivedMessageKey.value)
        )
        keys = {tuple(row) for row in rows.all()}
    assert {("package", "tzdata"), ("user", "ralph"), ("agent", "ralph")} <= keys

    async def counted() -> bool:
        async with sessionmaker() as session:
            total = await session.scalar(
                select(func.sum(models.Generated.count)).where(models.Generated.rule_id == 1)
            )
        return total == 1

    await wait_until(counted)


async def test_nothing_for_messages_no_rule_tracks(
    start_consumer: Any,
    client_broker: Broker,
    consumer_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await add_rules(
        sessionmaker, rule(1, "alice", {"name": "artifacts-owned", "params": ["alice"]})
    )
    await start_consumer()
    await publish(client_broker, CHROMIUM_BUILD)  # owned by spot
    await wait_until(lambda: archived(sessionmaker), timeout=10)
    queue = send_queue(consumer_settings.send_queue.exchange, "email")
    assert await client_broker.queue_size(queue) == 0


async def test_a_stop_ends_the_periodic_tasks_without_acting(start_consumer: Any) -> None:
    """A stop ends the periodic tasks' wait (index rebuild, counts, pruning, unmuting); acting
    then held a SIGTERM for the action's time: a rebuild of the index, over a minute at 10k
    rules on a loaded machine."""
    consumer = await start_consumer()
    acted: list[bool] = []

    async def periodic_action() -> None:
        acted.append(True)

    periodic = asyncio.create_task(consumer._every(3600, periodic_action))
    for _ in range(3):
        await asyncio.sleep(0)  # into its wait
    await consumer.stop()
    await periodic
    assert acted == []


async def test_both_replicas_see_a_rule_change(
    start_consumer: Any,
    client_broker: Broker,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    first = await start_consumer("replica 1")
    second = await start_consumer("replica 2")
    assert len(first.index) == len(second.index) == 0
    await add_rules(sessionmaker, rule(7, "bob", {"name": "users-followed", "params": ["ralph"]}))
    await publish(
        client_broker,
        {
            "topic": "org.fedoraproject.prod.fmn.rule.create.v1",
            "body": {"rule": {"id": 7, "name": "rule 7"}, "user": {"name": "bob"}},
        },
    )

    async def both() -> bool:
        return len(first.index) == 1 and len(second.index) == 1

    # How fast is measured by bench/bench_consumer.py; here: both replicas, not just one.
    await wait_until(both)


async def bob_becomes_a_committer_of_tzdata(
    directory: SwitchableDirectory, client_broker: Broker
) -> None:
    """The directory changes, and Pagure announces it on the bus."""
    changed = json.loads(json.dumps(DIRECTORY))
    changed["projects"]["rpms/tzdata"]["access_users"]["commit"] = ["bob"]
    directory.replace(changed)
    await publish(
        client_broker,
        {
            "topic": "org.fedoraproject.prod.pagure.project.user.added",
            "body": {
                "project": {
                    "fullname": "rpms/tzdata",
                    "full_url": "https://src.fedoraproject.org/rpms/tzdata",
                },
                "new_user": "bob",
                "agent": "alice",
            },
        },
    )


async def test_ownership_change_takes_effect(
    start_consumer: Any,
    client_broker: Broker,
    consumer_settings: Settings,
    directory: SwitchableDirectory,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await add_rules(sessionmaker, rule(3, "bob", {"name": "artifacts-owned", "params": ["bob"]}))
    consumer = await start_consumer()
    await bob_becomes_a_committer_of_tzdata(directory, client_broker)

    async def bob_owns_tzdata() -> bool:
        return 3 in consumer.index.candidates(parse_message(TZDATA_EDIT))

    await wait_until(bob_owns_tzdata)
    await publish(client_broker, TZDATA_EDIT)
    items = await work_items(client_broker, consumer_settings, "email", 1)
    assert items[0].address == "bob@example.org"
    assert [r.id for r in items[0].rules] == [3]


async def test_failing_directory_makes_messages_wait_not_vanish(
    start_consumer: Any,
    client_broker: Broker,
    consumer_settings: Settings,
    directory: SwitchableDirectory,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await add_rules(sessionmaker, rule(3, "bob", {"name": "artifacts-owned", "params": ["bob"]}))
    consumer = await start_consumer()
    directory.failing = True
    await bob_becomes_a_committer_of_tzdata(directory, client_broker)

    async def waiting() -> bool:
        return not consumer._ready.is_set()

    await wait_until(waiting)  # the change could not be applied: bus messages wait
    waiting_id = await publish(client_broker, {**TZDATA_EDIT, "id": None})
    await asyncio.sleep(1.0)
    # Nothing sent as "not owned", nothing acknowledged: the message waits.
    queue = send_queue(consumer_settings.send_queue.exchange, "email")
    assert await client_broker.queue_size(queue) == 0
    async with sessionmaker() as session:
        ids = set(await session.scalars(select(models.ArchivedMessage.message_id)))
    assert waiting_id not in ids
    directory.failing = False
    items = await work_items(client_broker, consumer_settings, "email", 1)
    assert items[0].address == "bob@example.org"


async def test_bad_input_is_refused_and_the_consumer_keeps_going(
    start_consumer: Any,
    client_broker: Broker,
    consumer_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await add_rules(
        sessionmaker,
        rule(1, "alice", {"name": "artifacts-owned", "params": ["alice"]}),
        rule(2, "alice", {"name": "related-events", "params": None}),
    )
    await start_consumer()
    bad: list[tuple[dict[str, Any], bytes | None]] = [
        ({"topic": "bodhi.update.edit", "body": None}, b"{not json"),
        ({"topic": "bodhi.update.edit", "body": None}, b"\xff\xfe"),
        ({"topic": "bodhi.update.edit", "body": ["a", "list"]}, None),
        ({"topic": "x", "body": {"big": "a" * (9 * 1024 * 1024)}}, None),
        (
            {
                "topic": TZDATA_EDIT["topic"],
                "headers": {**TZDATA_EDIT["headers"], "fedora_messaging_severity": "loud"},
                "body": TZDATA_EDIT["body"],
            },
            None,
        ),
        (
            {
                "topic": "bodhi.update.edit",
                "headers": {"fedora_messaging_schema": "bodhi.update.edit.v2"},
                "body": {"broken": True},
            },
            None,
        ),
        ({"topic": "weird.tøpic.\u2603.*.#", "body": {"x": 1}}, None),
    ]
    ids = [await publish(client_broker, message, body) for message, body in bad]
    # An unknown severity header is ignored; the message itself is fine and matches.
    loud_id = ids[4]
    # A message whose schema is unknown still matches on its headers.
    unknown = {
        "topic": "org.example.prod.newapp.thing.happened",
        "headers": {
            "fedora_messaging_schema": "newapp.thing.v1",
            "fedora_messaging_rpm_tzdata": True,
            "fedora_messaging_user_alice": True,
        },
        "body": {"anything": "goes"},
    }
    unknown_id = await publish(client_broker, unknown)
    good_id = await publish(client_broker, TZDATA_EDIT)
    items = await work_items(client_broker, consumer_settings, "email", 3, timeout=20)
    assert {item.message.id for item in items} == {unknown_id, good_id, loud_id}
    assert {r.id for r in next(i for i in items if i.message.id == unknown_id).rules} == {1, 2}
    await wait_until(lambda: queue_empty(client_broker, consumer_settings.bus.queue))
    rejected = await client_broker.queue_size(f"{consumer_settings.bus.queue}.rejected")
    assert rejected >= 4  # not JSON (2), not an object, too big: dead-lettered, not lost


async def test_a_muted_rule_is_silent_until_its_mute_ends(
    start_consumer: Any,
    client_broker: Broker,
    consumer_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await add_rules(
        sessionmaker, rule(1, "alice", {"name": "artifacts-owned", "params": ["alice"]})
    )
    mute_ends = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(models.Rule).where(models.Rule.id == 1).values(muted_until=mute_ends)
        )
    await start_consumer()
    await publish(client_broker, TZDATA_EDIT)
    await wait_until(lambda: archived(sessionmaker))
    queue = send_queue(consumer_settings.send_queue.exchange, "email")
    assert await client_broker.queue_size(queue) == 0
    await asyncio.sleep((mute_ends - dt.datetime.now(dt.UTC)).total_seconds() + 0.5)
    second = await publish(client_broker, {**TZDATA_EDIT, "id": None})
    items = await work_items(client_broker, consumer_settings, "email", 1)
    assert items[0].message.id == second
    assert items[0].address == "alice@example.org"


async def test_rules_reaching_past_artifacts_on_real_messages(
    start_consumer: Any,
    client_broker: Broker,
    consumer_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await add_rules(
        sessionmaker,
        rule(1, "alice", {"name": "applications", "params": ["ansible"]}),
        rule(2, "bob", {"name": "topics", "params": ["org.fedoraproject.prod.bodhi.compose.*"]}),
        rule(
            3,
            "ralph",
            {"name": "projects-followed", "params": [{"forge": "pagure.io", "name": "pagure"}]},
        ),
    )
    ansible = load_corpus("schema-tests-fedorainfra-ansible-messages.jsonl")
    pagure = load_corpus("schema-tests-pagure-messages.jsonl")
    # On the topics production gives them (the schema packages' examples carry none).
    playbook = {**ansible[0], "topic": "org.fedoraproject.prod." + ansible[0]["topic"]}
    compose = next(m for m in BODHI if m["topic"] == "bodhi.compose.complete")
    compose = {**compose, "topic": "org.fedoraproject.prod.bodhi.compose.complete"}
    pull_request = next(m for m in pagure if m["topic"] == "pagure.pull-request.new")
    pull_request = {**pull_request, "topic": "io.pagure.prod.pagure.pull-request.new"}
    await start_consumer()
    for message in (playbook, compose, pull_request):
        await publish(client_broker, message)

    items = await work_items(client_broker, consumer_settings, "email", 3)
    assert {
        (item.address, item.message.topic, tuple(r.id for r in item.rules)) for item in items
    } == {
        ("alice@example.org", playbook["topic"], (1,)),
        ("bob@example.org", compose["topic"], (2,)),
        ("ralph@example.org", pull_request["topic"], (3,)),
    }

    # The project is an archive key: a preview finds the project's messages by it.
    async def all_archived() -> bool:
        return await archived(sessionmaker) == 3

    await wait_until(all_archived)
    async with sessionmaker() as session:
        rows = await session.execute(
            select(models.ArchivedMessageKey.value).where(
                models.ArchivedMessageKey.kind == "project"
            )
        )
        assert list(rows.scalars()) == ["pagure.io:pagure"]


async def test_a_failed_consumer_task_ends_the_consumer_with_an_error(
    consumer_settings: Settings,
    directory: SwitchableDirectory,
    sessionmaker: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Not an outage (those are waited out) but a bug: the replica must end with an error status
    # so that its supervisor starts it again (systemd's Restart=on-failure), not exit 0.
    await add_rules(sessionmaker, rule(3, "bob", {"name": "artifacts-owned", "params": ["bob"]}))
    settings = consumer_settings.model_copy(
        update={"consumer": consumer_settings.consumer.model_copy(update={"rebuild_interval": 0.2})}
    )
    consumer = Consumer(
        settings,
        directory=directory,  # type: ignore[arg-type]
        sessionmaker=sessionmaker,
        bus=make_broker(settings.bus.amqp_url, "failing consumer"),
        send=make_broker(settings.send_queue.amqp_url, "failing consumer"),
    )
    await consumer.start()
    running = asyncio.create_task(consumer.run())
    directory.broken = True  # the next periodic rebuild meets it
    with pytest.raises(ConsumerFailed, match="rebuild"):
        await asyncio.wait_for(running, 30)
    assert "a bug in the directory client" in caplog.text

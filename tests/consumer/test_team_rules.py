"""Team rules in the consumer: a group's rule notifies its verified list, channel and room, and
never one that is not verified, whatever the database says the rule names."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fmn.core.settings import Settings
from fmn.db import models
from fmn.rules.incoming import parse_message
from fmn.sendqueue.topology import send_queue
from fmn.transport import Broker
from tests.conftest import load_corpus
from tests.consumer.conftest import (
    DIRECTORY,
    SwitchableDirectory,
    add_rules,
    publish,
    work_items,
)
from tests.consumer.test_consumer import wait_until

BODHI = load_corpus("schema-tests-bodhi-messages.jsonl")
TZDATA_EDIT = next(m for m in BODHI if m["topic"].endswith("update.edit"))  # agent ralph
LIST, CHANNEL = "python-sig@lists.example.org", "#python-sig"


def team_rule() -> dict[str, Any]:
    """As `fmn rules import` carries it: owned by the group, naming two team destinations."""
    return {
        "id": 40,
        "name": "ralph's updates",
        "user": {"name": "group:python-sig"},
        "tracking_rule": {"name": "users-followed", "params": ["ralph"]},
        "generation_rules": [
            {
                "destinations": [
                    {"protocol": "email", "address": LIST},
                    {"protocol": "irc", "address": CHANNEL},
                ],
                "filters": {},
            }
        ],
    }


async def verify(
    sessionmaker: async_sessionmaker[AsyncSession], protocol: str, address: str
) -> None:
    async with sessionmaker() as session, session.begin():
        session.add(
            models.TeamDestination(
                group_name="python-sig",
                protocol=protocol,
                address=address,
                failed_attempts=0,
                verified_at=dt.datetime.now(dt.UTC),
                verified_by="bob",
            )
        )


async def test_a_team_rule_notifies_only_its_verified_destinations(
    start_consumer: Any,
    client_broker: Broker,
    consumer_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await add_rules(sessionmaker, team_rule())
    await verify(sessionmaker, "email", LIST.upper())  # a list address compares in any case
    consumer = await start_consumer()
    message_id = await publish(client_broker, TZDATA_EDIT)

    [item] = await work_items(client_broker, consumer_settings, "email", 1)
    assert item.address == LIST
    assert item.user == "group:python-sig"
    assert item.team == "python-sig"  # what the email sender frames the mail by
    assert item.key == f"{message_id}/email/{LIST}"
    irc = send_queue(consumer_settings.send_queue.exchange, "irc")
    assert await client_broker.queue_size(irc) == 0

    # The channel verified, and the group's rules announced (as the API does): now both.
    await verify(sessionmaker, "irc", CHANNEL)
    await publish(
        client_broker,
        {
            "topic": "org.fedoraproject.prod.fmn.rule.update.v1",
            "body": {"rule": {"id": 40, "name": "x"}, "user": {"name": "group:python-sig"}},
        },
    )

    async def reloaded() -> bool:
        compiled = consumer.index.rule(40)
        return compiled is not None and len(compiled.generation_rules[0].destinations) == 2

    await wait_until(reloaded)
    await publish(client_broker, {**TZDATA_EDIT, "id": None})
    [to_channel] = await work_items(client_broker, consumer_settings, "irc", 1)
    assert to_channel.address == CHANNEL


async def python_sig_loses_its_last_member(
    directory: SwitchableDirectory, client_broker: Broker
) -> None:
    """The directory changes, and Noggin announces it on the bus."""
    changed = json.loads(json.dumps(DIRECTORY))
    changed["groups"]["python-sig"]["members"] = []
    directory.replace(changed)
    body = {"msg": {"agent": "alice", "user": "bob", "group": "python-sig"}}
    topic = "org.fedoraproject.prod.fas.group.member.removed"
    await publish(client_broker, {"topic": topic, "body": body})


async def test_a_team_that_loses_its_last_member_is_no_longer_notified(
    start_consumer: Any,
    client_broker: Broker,
    directory: SwitchableDirectory,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    # A group without members owns nothing any more (its rules are disabled, as a gone user's),
    # from the membership message on, not from the hourly rebuild of the index.
    await add_rules(sessionmaker, team_rule())
    await verify(sessionmaker, "email", LIST)
    consumer = await start_consumer()
    assert "group:python-sig" not in consumer.index.gone_users
    await python_sig_loses_its_last_member(directory, client_broker)

    async def gone() -> bool:
        return "group:python-sig" in consumer.index.gone_users

    await wait_until(gone)
    assert consumer.index.match(parse_message(TZDATA_EDIT)) == []

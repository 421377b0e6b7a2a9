"""Bad input and refused recipients end in the dead-letter queue with their reason, the sender
keeps going, and dead letters can be listed, replayed and discarded (functions and CLI)."""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner

from fmn.cli import cli
from fmn.core import settings as settings_module
from fmn.core.settings import Settings
from fmn.db.models import DeliveryStatus
from fmn.sendqueue.deadletters import (
    discard_dead_letters,
    list_dead_letters,
    replay_dead_letters,
)
from fmn.sendqueue.topology import dead_letter_queue
from fmn.sendqueue.workitem import pack
from fmn.transport import Broker
from fmn.transport.base import Outgoing
from tests.harness.smtp_server import SMTPServer
from tests.senders.conftest import running
from tests.senders.helpers import delivery_log, eventually, make_item, publish, queue_has


async def test_bad_items_are_dead_lettered_and_replayable(
    email_settings: Settings, broker: Broker, smtp: SMTPServer, exchange: str, pg_url: str
) -> None:
    smtp.sink.refuse.add("gone@example.org")
    refused = make_item("email", "gone@example.org")
    invalid = make_item("email", "not an address")
    irc_item = make_item("irc", "alice")  # on the email queue by mistake
    good = make_item("email", "alice@example.org")
    dlq = dead_letter_queue(exchange, "email")

    async with running("email", email_settings):
        await publish(broker, exchange, b"{not json", protocol="email")
        await publish(broker, exchange, refused, invalid)
        await broker.publish(exchange, Outgoing("send.email", irc_item.to_bytes()))
        await publish(broker, exchange, good)
        await eventually(lambda: smtp.received)
        await eventually(lambda: queue_has(broker, dlq, 4))

        letters = await list_dead_letters(broker, exchange, "email")
        assert await broker.queue_size(dlq) == 4  # listing leaves them in place
        reasons = {
            (letter.item.address if letter.item else None): letter.reason for letter in letters
        }
        assert reasons[None].startswith("unreadable work item")
        assert reasons["gone@example.org"].startswith("SMTP 550")
        assert reasons["not an address"].startswith("not a valid email address")
        assert reasons["alice"] == "not a email work item"
        assert [r.rcpt_tos for r in smtp.received] == [["alice@example.org"]]
        rows = await eventually(lambda: delivery_log(pg_url, idempotency_key=refused.key))
        assert [(r.status, r.detail) for r in rows] == [
            (DeliveryStatus.DEAD, reasons["gone@example.org"])
        ]

        # The user exists again: replay that one; it is delivered, the others stay.
        smtp.sink.refuse.clear()
        [refused_letter] = [x for x in letters if x.item and x.item.key == refused.key]
        assert await replay_dead_letters(broker, exchange, "email", {refused_letter.id}) == 1
        await eventually(lambda: len(smtp.received) == 2)
        assert smtp.received[1].rcpt_tos == ["gone@example.org"]
        assert await broker.queue_size(dlq) == 3

        assert await discard_dead_letters(broker, exchange, "email") == 3
        assert await broker.queue_size(dlq) == 0


async def test_a_message_of_several_items_in_the_dead_letters(
    email_settings: Settings, broker: Broker, smtp: SMTPServer, exchange: str
) -> None:
    """As RabbitMQ's delivery limit leaves it (production's quorum queues): the whole message,
    listed as one entry that says so, and replayed whole, to be split by the sender."""
    items = [make_item("email", f"user{i}@example.org") for i in range(3)]
    dlq = dead_letter_queue(exchange, "email")
    [message] = pack(items, 10)
    # RabbitMQ says why in its x-death header.
    death = {"reason": "delivery_limit", "queue": f"{exchange}.email", "count": 1}
    await broker.publish(
        "",
        Outgoing(dlq, message.body, message_id=message.message_id, headers={"x-death": [death]}),
    )
    [letter] = await list_dead_letters(broker, exchange, "email")
    assert letter.item is None
    assert letter.reason == (
        "dead-lettered by the broker: delivery_limit (3 work items in one message)"
    )
    async with running("email", email_settings):
        assert await replay_dead_letters(broker, exchange, "email", {letter.id}) == 1
        await eventually(lambda: len(smtp.received) == 3)
    assert sorted(r.rcpt_tos[0] for r in smtp.received) == [i.address for i in items]
    assert await broker.queue_size(dlq) == 0


async def test_deadletter_cli(
    email_settings: Settings,
    broker: Broker,
    exchange: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    item = make_item("email", "nobody")
    async with running("email", email_settings):
        await publish(broker, exchange, item)
        await eventually(lambda: queue_has(broker, dead_letter_queue(exchange, "email"), 1))

    monkeypatch.setenv("FMN_SEND_QUEUE__AMQP_URL", email_settings.send_queue.amqp_url)
    monkeypatch.setenv("FMN_SEND_QUEUE__EXCHANGE", exchange)
    settings_module.get_settings.cache_clear()
    runner = CliRunner()
    try:
        # The command runs its own event loop: call it from a worker thread.
        listed = await asyncio.to_thread(runner.invoke, cli, ["deadletter", "list", "--json"])
        assert listed.exit_code == 0, listed.output
        [entry] = [json.loads(line) for line in listed.output.splitlines()]
        assert entry["address"] == "nobody" and entry["protocol"] == "email"
        assert entry["reason"].startswith("not a valid email address")

        refused = await asyncio.to_thread(runner.invoke, cli, ["deadletter", "replay"])
        assert refused.exit_code != 0
        discarded = await asyncio.to_thread(
            runner.invoke, cli, ["deadletter", "discard", entry["id"]]
        )
        assert discarded.output.strip() == "discarded 1"
    finally:
        settings_module.get_settings.cache_clear()
    assert await broker.queue_size(dead_letter_queue(exchange, "email")) == 0

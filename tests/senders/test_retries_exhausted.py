"""A destination that refuses every attempt with a temporary error: the item goes through each
real retry queue (RabbitMQ TTL queues with short delays) and lands in the dead letters with its
attempt count and last error, as `fmn deadletter list` shows them to an admin."""

from __future__ import annotations

import asyncio
import itertools
import json
import time

import pytest
from click.testing import CliRunner

from fmn.cli import cli
from fmn.core import settings as settings_module
from fmn.core.settings import Settings
from fmn.db.models import DeliveryStatus
from fmn.sendqueue.topology import dead_letter_queue, retry_queue
from fmn.transport import Broker
from tests.harness.smtp_server import SMTPServer
from tests.senders.conftest import RETRY_DELAYS, running
from tests.senders.helpers import delivery_log, eventually, make_item, publish, queue_has

REFUSAL_TEXT = "4.3.0 mailbox temporarily unavailable, try again later"
REFUSAL = f"451 {REFUSAL_TEXT}"


async def test_every_attempt_refused_ends_in_dead_letters(
    email_settings: Settings,
    broker: Broker,
    smtp: SMTPServer,
    exchange: str,
    pg_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attempts_at: list[float] = []

    def refuse(_count: int) -> str:
        attempts_at.append(time.monotonic())
        return REFUSAL

    smtp.sink.before_store = refuse
    item = make_item("email", "alice@example.org")
    dlq = dead_letter_queue(exchange, "email")

    async with running("email", email_settings):
        await publish(broker, exchange, item)
        await eventually(lambda: queue_has(broker, dlq, 1), timeout=20)

    # One first attempt, then one per retry queue; nothing was delivered.
    assert len(attempts_at) == len(RETRY_DELAYS) + 1
    assert smtp.received == []
    # Each retry came back only after its queue's delay had run out: it went through that
    # queue (a retry taken straight from the send queue would come back at once).
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts_at)]
    for gap, delay in zip(gaps, RETRY_DELAYS, strict=True):
        assert gap >= delay * 0.9, (gaps, RETRY_DELAYS)
    for attempt in range(len(RETRY_DELAYS)):
        assert await broker.queue_size(retry_queue(exchange, "email", attempt)) == 0

    # The delivery log tells the same story, attempt by attempt.
    rows = await eventually(
        lambda: delivery_log(pg_url, idempotency_key=item.key, status=DeliveryStatus.DEAD)
    )
    history = sorted(
        (r.attempt, r.status) for r in await delivery_log(pg_url, idempotency_key=item.key)
    )
    assert history == [(n, DeliveryStatus.FAILED) for n in (1, 2, 3)] + [(4, DeliveryStatus.DEAD)]
    expected_reason = f"gave up after 4 attempts: SMTP 451: {REFUSAL_TEXT}"
    assert rows[0].detail == expected_reason

    # What an admin sees.
    monkeypatch.setenv("FMN_SEND_QUEUE__AMQP_URL", email_settings.send_queue.amqp_url)
    monkeypatch.setenv("FMN_SEND_QUEUE__EXCHANGE", exchange)
    settings_module.get_settings.cache_clear()
    try:
        listed = await asyncio.to_thread(CliRunner().invoke, cli, ["deadletter", "list", "--json"])
    finally:
        settings_module.get_settings.cache_clear()
    assert listed.exit_code == 0, listed.output
    [entry] = [json.loads(line) for line in listed.output.splitlines()]
    assert entry["key"] == item.key
    assert entry["address"] == "alice@example.org"
    assert entry["attempts"] == 4
    assert entry["reason"] == expected_reason
    assert entry["failed_at"]

"""The archive is pruned past its retention, a batch per transaction, while the consumer runs
and keeps archiving what arrives."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fmn.core.settings import Settings
from fmn.db import models
from fmn.transport import Broker
from tests.api.archive import archive, koji_build
from tests.consumer.conftest import publish
from tests.consumer.test_consumer import TZDATA_EDIT, wait_until

RETENTION_DAYS = 3
BATCH = 10
OLD = 25  # three batches: 10, 10, 5


@pytest.fixture
def consumer_settings(consumer_settings: Settings) -> Settings:
    archive_settings = consumer_settings.archive.model_copy(
        update={"retention_days": RETENTION_DAYS, "prune_interval": 0.2, "prune_batch": BATCH}
    )
    return consumer_settings.model_copy(update={"archive": archive_settings})


async def counts(sessionmaker: async_sessionmaker[AsyncSession]) -> tuple[int, int, int]:
    """Archived messages older than the retention, within it, and match keys of old ones."""
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=RETENTION_DAYS)
    message = models.ArchivedMessage
    async with sessionmaker() as session:
        old = await session.scalar(select(func.count()).where(message.sent_at < cutoff))
        recent = await session.scalar(select(func.count()).where(message.sent_at >= cutoff))
        old_keys = await session.scalar(
            select(func.count())
            .select_from(models.ArchivedMessageKey)
            .where(models.ArchivedMessageKey.sent_at < cutoff)
        )
    return int(old or 0), int(recent or 0), int(old_keys or 0)


async def test_old_messages_pruned_in_batches_while_consuming(
    start_consumer: Any,
    client_broker: Broker,
    sessionmaker: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = dt.datetime.now(dt.UTC)
    old = [
        koji_build("alice", f"pkg{i}", now - dt.timedelta(days=RETENTION_DAYS, hours=1 + i))
        for i in range(OLD)
    ]
    # Just inside the retention: kept.
    kept = [koji_build("alice", "kept", now - dt.timedelta(days=RETENTION_DAYS, hours=-1))]
    async with sessionmaker() as session:
        await archive(session, old + kept)
    before = await counts(sessionmaker)
    assert before[:2] == (OLD, 1) and before[2] > 0

    caplog.set_level(logging.INFO, logger="fmn.consumer.service")
    await start_consumer()
    message_id = await publish(client_broker, TZDATA_EDIT)

    async def pruned_and_consumed() -> bool:
        async with sessionmaker() as session:
            fresh = await session.scalar(
                select(func.count()).where(models.ArchivedMessage.message_id == message_id)
            )
        return bool(fresh) and (await counts(sessionmaker))[0] == 0

    await wait_until(pruned_and_consumed)
    # The old messages and their keys are gone; the one inside the retention and the message
    # consumed meanwhile are still there.
    assert await counts(sessionmaker) == (0, 2, 0)
    assert f"archive: pruned {OLD} messages in 3 batches" in caplog.messages

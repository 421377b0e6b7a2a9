"""The delivery log: every attempt and delivery, written to the `deliveries` table in batches
(one INSERT per flush interval rather than one per notification)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from prometheus_client import Counter
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fmn.db.models import Delivery, DeliveryStatus, utcnow
from fmn.sendqueue.workitem import WorkItem

log = logging.getLogger(__name__)

# Rows kept while the database is unreachable; beyond this the oldest are dropped (the log is a
# history, not the source of truth for delivery, so it must never block sending).
MAX_BUFFER = 100_000


OUTCOMES = Counter(
    "fmn_sender_deliveries_total",
    "Delivery attempts and outcomes by protocol (sent, failed and retried, dead, held, digested)",
    ["protocol", "status"],
)


class DeliveryLog:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession] | None, flush_interval: float
    ) -> None:
        self.sessionmaker = sessionmaker
        self.flush_interval = flush_interval
        self._rows: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False

    def record(
        self,
        item: WorkItem,
        status: DeliveryStatus,
        attempt: int = 1,
        detail: str | None = None,
    ) -> None:
        # Every outcome passes here: sent, failed (will retry), dead, held, digested.
        OUTCOMES.labels(item.protocol, str(status)).inc()
        if self.sessionmaker is None:
            return
        self._rows.append(
            {
                "created_at": utcnow(),
                "user_name": item.user,
                "idempotency_key": item.key[:512],
                "message_id": item.message.id[:255],
                "topic": item.message.topic,
                "protocol": item.protocol,
                "address": item.address,
                "rule_ids": [r.id for r in item.rules],
                "status": status,
                "attempt": attempt,
                "detail": detail,
                "summary": item.message.summary,
            }
        )
        if len(self._rows) > MAX_BUFFER:
            del self._rows[: len(self._rows) - MAX_BUFFER]

    def start(self) -> None:
        if self.sessionmaker is not None and self._task is None:
            self._task = asyncio.create_task(self._run(), name="delivery-log")

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_interval)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        if not self._rows or self.sessionmaker is None:
            return
        rows, self._rows = self._rows, []
        try:
            async with self.sessionmaker() as session, session.begin():
                await session.execute(insert(Delivery), rows)
        except Exception:
            log.exception("could not write %d delivery-log rows; will retry", len(rows))
            self._rows[:0] = rows

    async def close(self) -> None:
        # Not cancelled: a flush cut off mid-query would leave its connection unusable.
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()

"""Per-rule generated counts, summed in memory and written in one transaction per interval
instead of one row per notification (FMN 3 wrote a row per hit)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from fmn.db.models import Generated, Rule


class GeneratedCounts:
    def __init__(self) -> None:
        self._pending: Counter[int] = Counter()

    def add(self, rule_ids: Iterable[int]) -> None:
        self._pending.update(rule_ids)

    def __len__(self) -> int:
        return len(self._pending)

    async def flush(self, session: AsyncSession) -> int:
        """Write the pending counts; returns how many rules had some. On error the counts stay
        pending for the next flush."""
        if not self._pending:
            return 0
        pending, self._pending = self._pending, Counter()
        try:
            # Rules deleted since they matched would fail the foreign key: skip them.
            existing = set(
                (await session.scalars(select(Rule.id).where(Rule.id.in_(pending)))).all()
            )
            now = dt.datetime.now(dt.UTC)
            rows = [
                {"rule_id": rule_id, "when": now, "count": count}
                for rule_id, count in pending.items()
                if rule_id in existing
            ]
            if rows:
                await session.execute(insert(Generated), rows)
        except BaseException:
            self._pending.update(pending)
            raise
        return len(rows)

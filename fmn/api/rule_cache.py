"""The rules list's page cache: each API process keeps the JSON of the pages it served, and
serves one again only while PostgreSQL says that nothing the page shows has changed.

Every request still asks the database, but only for a fingerprint of the user's rules (one
text), not the rows to decode, shape and serialize: the id and transaction id (xmin) of each row
of the rule tables that belongs to the user, and the notification counts of the last 7 days.
Any committed insert, update or delete gives a row a new xmin (or removes it), so a page
written by anyone — this process, another worker, an admin, `fmn rules import`, plain SQL — is
never served stale, and nothing has to remember to invalidate anything. The page and its
fingerprint are read by one statement, so they describe the same snapshot.

Only for PostgreSQL (xmin is its own); other databases read the page every time.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy.ext.asyncio import AsyncSession

from fmn.api.rule_queries import FINGERPRINT_ASYNCPG, read_rules, read_user_page, week_ago
from fmn.api.schemas import RulePublic

# Pages kept per process, by size of their JSON (oldest used dropped first).
MAX_BYTES = 32 * 1024 * 1024

_RULES_JSON = TypeAdapter(list[RulePublic])


def rules_json(rules: list[RulePublic]) -> bytes:
    """The JSON FastAPI writes for a `list[RulePublic]` response model."""
    return _RULES_JSON.dump_json(rules, by_alias=True)


@dataclass(frozen=True)
class Page:
    body: bytes  # the JSON array
    total: int  # the user's rules in all
    fingerprint: str | None = None


class RulePages:
    """One page of a user's rules, as JSON, from the cache while it is still true."""

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._pages: OrderedDict[tuple[str, int, int], Page] = OrderedDict()
        self._bytes = 0

    async def get(self, session: AsyncSession, username: str, offset: int, limit: int) -> Page:
        connection = await session.connection()
        if connection.dialect.name != "postgresql":
            rules, total = await read_rules(session, username=username, offset=offset, limit=limit)
            return Page(rules_json(rules), total)
        key = (username, offset, limit)
        cached = self._pages.get(key)
        if cached is not None:
            driver: Any = (await connection.get_raw_connection()).driver_connection
            now = await driver.fetchval(FINGERPRINT_ASYNCPG, username, week_ago())
            if now == cached.fingerprint:
                self._pages.move_to_end(key)
                return cached
        rules, total, fingerprint = await read_user_page(session, username, offset, limit)
        page = Page(rules_json(rules), total, fingerprint)
        self._store(key, page)
        return page

    def _store(self, key: tuple[str, int, int], page: Page) -> None:
        old = self._pages.pop(key, None)
        if old is not None:
            self._bytes -= len(old.body)
        if page.fingerprint is None or len(page.body) > self.max_bytes:
            return
        self._pages[key] = page
        self._bytes += len(page.body)
        while self._bytes > self.max_bytes:
            _, dropped = self._pages.popitem(last=False)
            self._bytes -= len(dropped.body)

"""The rules list's page cache: each API process keeps the JSON of the pages it served, and
serves one again only while PostgreSQL says that nothing the page shows has changed.

Every request still asks the database, after it arrived, but only for the user's versions
(VERSIONS: two index look-ups): numbers that triggers change in the
writing transaction with every insert, update or delete of the user's rules, their parts and
their counts (migration 0002), so a page written by anyone — this process, another worker, an
admin, `fmn rules import`, plain SQL, the consumer's counts — is never served stale, and
nothing has to remember to invalidate anything. A page and its versions are read by one
statement, so they describe the same snapshot. The counts are those of the last 7 days: a page
is also dropped when its oldest count leaves that window.

The check queries of concurrent requests go together (VersionChecks): under load, one round
trip on one connection answers many requests.

Only for PostgreSQL; other databases read the page every time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache
from pydantic import TypeAdapter
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from fmn.api.schemas import RulePublic
from fmn.core.batching import Coalescer
from fmn.rules.store import Version, read_rules, week_ago

log = logging.getLogger(__name__)

# Pages kept per process, by size of their JSON (oldest used dropped first).
MAX_BYTES = 32 * 1024 * 1024
# Seconds a check query may take: beyond, its askers read their pages the ordinary way (a
# check that never ended would hold up every request of the process, not only its own).
CHECK_TIMEOUT = 5.0

_RULES_JSON = TypeAdapter(list[RulePublic])
PageKey = tuple[str, int, int | None, bool]  # user, offset, limit, FMN 3's kinds only

# The versions of what a user's rules list shows (migration 0002): the user's id, and the
# numbers the triggers change with every write to their rules and parts (rules version) and to
# their rules' counts (counts version). A user without a row has had no such write since the
# migration: None stands for that state.
VERSIONS = """
SELECT u.name, u.id, r.version, c.version FROM users u
LEFT JOIN user_rules_versions r ON r.user_id = u.id
LEFT JOIN user_counts_versions c ON c.user_id = u.id
WHERE u.name = ANY($1::text[])"""


def rules_json(rules: list[RulePublic]) -> bytes:
    """The JSON FastAPI writes for a `list[RulePublic]` response model."""
    return _RULES_JSON.dump_json(rules, by_alias=True)


@dataclass(frozen=True)
class CachedPage:
    body: bytes  # the JSON array
    total: int  # the user's rules in all
    version: Version | None = None  # None: not kept
    # The oldest count the page shows: the page holds while week_ago() is not past it.
    oldest_count: dt.datetime | None = None


class VersionChecks:
    """Users' current versions, each read by a query that starts after it was asked for.

    Asks that come while a query runs wait for the next one, which reads all of them at once:
    under load one round trip on one connection answers many requests, and PostgreSQL parses,
    plans and sends one statement instead of one per request.

    The connection: one held from the engine (on a failure it is dropped and the next query
    opens another), or the connection the sessions are bound to (tests: their transaction).
    """

    def __init__(self, bind: AsyncEngine | AsyncConnection) -> None:
        self.bind = bind
        self._own: AsyncConnection | None = None
        self._driver: Any = None
        self._statement: Any = None
        self._checks: Coalescer[str, Version | None] = Coalescer(
            self._versions, name="rules list version checks"
        )

    async def version(self, username: str) -> Version | None:
        """The user's current versions; None when there is no such user. Raises what the
        query raised."""
        (found,) = await self._checks([username])
        return found

    async def aclose(self) -> None:
        await self._checks.aclose()
        if self._own is not None:
            with contextlib.suppress(Exception):
                await self._own.close()
            self._own = None

    async def _versions(self, names: list[str]) -> list[Version | None]:
        try:
            found = await self._query(list(set(names)))
        except Exception as exc:  # the askers read their page instead
            log.warning("rules list version check failed: %r", exc)
            await self._drop_connection()
            raise
        return [found.get(name) for name in names]

    async def _query(self, names: list[str]) -> dict[str, Version]:
        driver: Any
        if isinstance(self.bind, AsyncConnection):
            driver = (await self.bind.get_raw_connection()).driver_connection
        elif self._own is not None and self._driver is not None:
            # The connection held stays the same until a failure drops it: no look-up (each
            # costs a greenlet switch in SQLAlchemy) per check.
            driver = self._driver
        else:
            if self._own is None:
                self._own = await self.bind.connect()
            driver = (await self._own.get_raw_connection()).driver_connection
        if driver is not self._driver:
            self._statement = await driver.prepare(VERSIONS)
            self._driver = driver
        rows = await self._statement.fetch(names, timeout=CHECK_TIMEOUT)
        return {name: (user_id, rules, counts) for name, user_id, rules, counts in rows}

    async def _drop_connection(self) -> None:
        self._driver = self._statement = None
        if self._own is not None:
            own, self._own = self._own, None
            with contextlib.suppress(Exception):
                await own.invalidate()
                await own.close()


class RulePages:
    """One page of a user's rules, as JSON, from the cache while it is still true."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], max_bytes: int = MAX_BYTES
    ) -> None:
        self.sessionmaker = sessionmaker
        # Pages by (user, offset, limit, FMN 3's kinds only), weighed by their JSON's size.
        self._pages: LRUCache[PageKey, CachedPage] = LRUCache(
            max_bytes, getsizeof=lambda page: len(page.body)
        )
        bind = sessionmaker.kw.get("bind")
        self.checks: VersionChecks | None = None
        if isinstance(bind, AsyncEngine | AsyncConnection) and bind.dialect.name == "postgresql":
            self.checks = VersionChecks(bind)

    async def aclose(self) -> None:
        if self.checks is not None:
            await self.checks.aclose()

    async def get(
        self, username: str, offset: int, limit: int | None, *, fmn3_only: bool = False
    ) -> CachedPage:
        """The page (`limit` None: every rule from `offset` on); `fmn3_only`: of the rules
        whose tracking rule FMN 3 has."""
        key = (username, offset, limit, fmn3_only)
        if self.checks is not None:
            cached = self._pages.get(key)
            if cached is not None and await self._holds(cached, username):
                return cached
        async with self.sessionmaker() as session:
            return await self._read(key, session)

    async def _holds(self, page: CachedPage, username: str) -> bool:
        """Whether the page is what the route would answer now."""
        if page.oldest_count is not None and week_ago() > page.oldest_count:
            return False  # a count it shows is no longer of the last 7 days
        assert self.checks is not None
        try:
            return await self.checks.version(username) == page.version
        except Exception:
            return False  # read the page (the failure, if it lasts, is the route's to answer)

    async def _read(self, key: PageKey, session: AsyncSession) -> CachedPage:
        username, offset, limit, fmn3_only = key
        kept = self.checks is not None
        read = await read_rules(
            session,
            username=username,
            offset=offset,
            limit=limit,
            fmn3_only=fmn3_only,
            since=week_ago(),
            versions=kept,
        )
        rules = [RulePublic.of(stored) for stored in read.rules]
        page = CachedPage(rules_json(rules), read.total, read.version, read.oldest_count)
        self._pages.pop(key, None)
        if kept and page.version is not None and len(page.body) <= self._pages.maxsize:
            self._pages[key] = page
        return page

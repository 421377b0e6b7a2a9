"""A user's inbox in the database: storing a work item once, reading pages and counts, read
state, and pruning past the retention period."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Select, exists, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fmn.db.models import InboxEntry, InboxEntryRule, Rule, User
from fmn.db.session import prune_in_batches
from fmn.sendqueue.workitem import WorkItem


class NoSuchUser(Exception):
    """The work item's user has no row (deleted since the consumer matched)."""


@dataclass(frozen=True)
class Stored:
    entry_id: int
    user_id: int
    new: bool  # False: the work item was stored before (a redelivery)


@functools.cache
def _insert(dialect: str) -> Any:
    """INSERT of an entry that does nothing when its key is there already."""
    module: Any = postgresql if dialect == "postgresql" else sqlite
    return (
        module.insert(InboxEntry)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(InboxEntry.id)
    )


async def store_item(session: AsyncSession, item: WorkItem, now: dt.datetime) -> Stored:
    """Store a `web` work item in its user's inbox, in the session's transaction; a work item
    stored before (same idempotency key) is not stored again."""
    # The user's row stays locked until the commit (PostgreSQL; SQLite has one writer at a
    # time anyway): one user's entries commit in the order of their ids, so a stream that sent
    # entry N has seen every entry of its user below N.
    user_id = await session.scalar(select(User.id).where(User.name == item.user).with_for_update())
    if user_id is None:
        raise NoSuchUser(item.user)
    content = item.web
    message = item.message
    values = {
        "user_id": user_id,
        "key": item.key,
        "subject": content.subject if content else message.summary,
        "text": content.text if content else message.summary,
        "link": message.url,
        "application": message.app_name,
        "topic": message.topic,
        "message_id": message.id,
        "message_time": message.sent_at,
        "created_at": now,
        "read": False,
    }
    dialect = session.get_bind().dialect.name
    entry_id = await session.scalar(_insert(dialect), values)
    if entry_id is None:
        found = await session.scalar(select(InboxEntry.id).where(InboxEntry.key == item.key))
        assert found is not None  # the conflict was on this key
        return Stored(found, user_id, new=False)
    rule_ids = sorted({rule.id for rule in item.rules})
    if rule_ids:
        await session.execute(
            insert(InboxEntryRule),
            [{"entry_id": entry_id, "rule_id": rule_id} for rule_id in rule_ids],
        )
    return Stored(entry_id, user_id, new=True)


# ---- reading --------------------------------------------------------------------------------


class RuleName(BaseModel):
    id: int
    name: str | None


class InboxEntryPublic(BaseModel):
    """An inbox entry as the API, the stream and the feeds show it."""

    id: int
    subject: str
    text: str
    link: str | None
    application: str | None
    topic: str
    message_id: str
    message_time: dt.datetime
    created_at: dt.datetime
    read: bool
    rules: list[RuleName]


def _aware(value: dt.datetime) -> dt.datetime:
    # SQLite gives naive datetimes back; they were stored in UTC.
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Filters:
    rule_id: int | None = None
    application: str | None = None
    unread: bool = False
    after_id: int | None = None  # only entries with a larger id
    before_id: int | None = None  # only entries with a smaller or equal id


UNREAD = Filters(unread=True)


def _where(query: Select[Any], user_id: int, filters: Filters) -> Select[Any]:
    query = query.where(InboxEntry.user_id == user_id)
    if filters.rule_id is not None:
        query = query.where(
            exists().where(
                InboxEntryRule.entry_id == InboxEntry.id,
                InboxEntryRule.rule_id == filters.rule_id,
            )
        )
    if filters.application is not None:
        query = query.where(InboxEntry.application == filters.application)
    if filters.unread:
        query = query.where(InboxEntry.read.is_(False))
    if filters.after_id is not None:
        query = query.where(InboxEntry.id > filters.after_id)
    if filters.before_id is not None:
        query = query.where(InboxEntry.id <= filters.before_id)
    return query


async def user_id_of(session: AsyncSession, username: str) -> int | None:
    return await session.scalar(select(User.id).where(User.name == username))


async def count(session: AsyncSession, user_id: int, filters: Filters = Filters()) -> int:
    query = _where(select(func.count()).select_from(InboxEntry), user_id, filters)
    return int(await session.scalar(query) or 0)


async def entries(
    session: AsyncSession,
    user_id: int,
    filters: Filters = Filters(),
    *,
    offset: int = 0,
    limit: int | None = None,
    oldest_first: bool = False,
) -> list[InboxEntryPublic]:
    """A user's entries, newest first (or oldest first), with the rules that fired."""
    order = InboxEntry.id.asc() if oldest_first else InboxEntry.id.desc()
    query = _where(select(InboxEntry), user_id, filters).order_by(order).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    rows = list((await session.execute(query)).scalars())
    return await views(session, rows)


async def views(session: AsyncSession, rows: Sequence[InboxEntry]) -> list[InboxEntryPublic]:
    if not rows:
        return []
    ids = [row.id for row in rows]
    pairs = (
        await session.execute(
            select(InboxEntryRule.entry_id, InboxEntryRule.rule_id, Rule.name)
            .outerjoin(Rule, Rule.id == InboxEntryRule.rule_id)
            .where(InboxEntryRule.entry_id.in_(ids))
            .order_by(InboxEntryRule.rule_id)
        )
    ).all()
    rules: dict[int, list[RuleName]] = {}
    for entry_id, rule_id, name in pairs:
        rules.setdefault(entry_id, []).append(RuleName(id=rule_id, name=name))
    return [
        InboxEntryPublic(
            id=row.id,
            subject=row.subject,
            text=row.text,
            link=row.link,
            application=row.application,
            topic=row.topic,
            message_id=row.message_id,
            message_time=_aware(row.message_time),
            created_at=_aware(row.created_at),
            read=row.read,
            rules=rules.get(row.id, []),
        )
        for row in rows
    ]


async def entry(session: AsyncSession, user_id: int, entry_id: int) -> InboxEntryPublic | None:
    row = await session.scalar(
        select(InboxEntry).where(InboxEntry.id == entry_id, InboxEntry.user_id == user_id)
    )
    return (await views(session, [row]))[0] if row is not None else None


async def mark(session: AsyncSession, user_id: int, entry_id: int, read: bool) -> bool:
    """Set an entry's read state; False when the user has no such entry."""
    result: Any = await session.execute(
        update(InboxEntry)
        .where(InboxEntry.id == entry_id, InboxEntry.user_id == user_id)
        .values(read=read)
    )
    return bool(result.rowcount)


async def mark_all_read(session: AsyncSession, user_id: int, before_id: int | None) -> int:
    """Mark every unread entry read (up to `before_id` included, when given); how many."""
    query = update(InboxEntry).where(InboxEntry.user_id == user_id, InboxEntry.read.is_(False))
    if before_id is not None:
        query = query.where(InboxEntry.id <= before_id)
    result: Any = await session.execute(query.values(read=True))
    return int(result.rowcount)


async def last_change(session: AsyncSession, user_id: int) -> tuple[int, dt.datetime | None]:
    """The newest entry's id and time (0, None when empty): what a feed's validators use."""
    row = (
        await session.execute(
            select(InboxEntry.id, InboxEntry.created_at)
            .where(InboxEntry.user_id == user_id)
            .order_by(InboxEntry.id.desc())
            .limit(1)
        )
    ).first()
    return (row[0], _aware(row[1])) if row else (0, None)


# ---- retention ------------------------------------------------------------------------------


async def prune(
    sessionmaker: async_sessionmaker[AsyncSession],
    retention_days: int,
    batch_size: int,
    now: dt.datetime | None = None,
) -> tuple[int, int]:
    """Forget entries stored before the retention period, in batches (as the archive does)."""
    cutoff = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=retention_days)
    return await prune_in_batches(
        sessionmaker,
        InboxEntry.id,
        InboxEntry.created_at < cutoff,
        batch_size,
        dependents=[InboxEntryRule.entry_id],
    )

"""Reading rules for the API's hot paths (the rules list, admin lists, one rule) in one Core
statement instead of the ORM's seven: the page with its total, owner, tracking rule, week's
count, generation rules, destinations and filters. The rows are shaped into rules by
fmn.rules.store.rule_to_schema itself, so the JSON is the store's, defined once."""

from __future__ import annotations

import datetime as dt
import typing
from functools import cache
from types import SimpleNamespace
from typing import Any

from sqlalchemy import JSON, Select, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from fmn.api.schemas import RulePublic
from fmn.db import models
from fmn.rules.store import rule_to_schema

R, U, T = models.Rule, models.User, models.TrackingRule
G, D, F = models.GenerationRule, models.Destination, models.Filter


def _json_rows(dialect: str, *columns: Any) -> Any:
    """An aggregate of rows as one JSON array of arrays (PostgreSQL or SQLite)."""
    if dialect == "postgresql":
        return func.json_agg(func.json_build_array(*columns), type_=JSON)
    return func.json_group_array(func.json_array(*columns), type_=JSON)


def _conditions(by_user: bool, by_id: bool, by_disabled: bool) -> list[Any]:
    conditions = []
    if by_user:
        conditions.append(U.name == bindparam("username"))
    if by_id:
        conditions.append(R.id == bindparam("rule_id"))
    if by_disabled:
        conditions.append(R.disabled == bindparam("disabled"))
    return conditions


@cache
def _page_statement(dialect: str, by_user: bool, by_id: bool, by_disabled: bool) -> Select[Any]:
    """The page query, in one round trip: each rule with its owner, tracking rule, week's
    count, and its generation rules, destinations and filters as JSON arrays. Built once per
    dialect and combination of conditions (building costs more than running); values come as
    bind parameters."""
    week = (
        select(func.coalesce(func.sum(models.Generated.count), 0))
        .where(models.Generated.rule_id == R.id, models.Generated.when >= bindparam("since"))
        .scalar_subquery()
    )
    generation = select(_json_rows(dialect, G.id)).where(G.rule_id == R.id).scalar_subquery()
    destinations = (
        select(_json_rows(dialect, G.id, D.id, D.protocol, D.address))
        .join(D, D.generation_rule_id == G.id)
        .where(G.rule_id == R.id)
        .scalar_subquery()
    )
    params = F.params if dialect == "postgresql" else func.json(F.params)
    filters = (
        select(_json_rows(dialect, G.id, F.id, F.name, params))
        .join(F, F.generation_rule_id == G.id)
        .where(G.rule_id == R.id)
        .scalar_subquery()
    )
    return (
        select(
            R.id,
            R.name,
            R.disabled,
            R.muted_until,
            U.id,
            U.name,
            T.name,
            T.params,
            week,
            generation,
            destinations,
            filters,
            func.count().over(),
        )
        .join(U, U.id == R.user_id)
        .outerjoin(T, T.rule_id == R.id)
        .where(*_conditions(by_user, by_id, by_disabled))
        .order_by(R.id)
        .offset(bindparam("offset"))
        .limit(bindparam("limit"))
    )


# PostgreSQL: the versions of what a user's rules list shows (see fmn.api.rule_cache and
# migration 0002): the user's id, and the numbers the triggers change with every write to
# their rules and parts (rules version) and to their rules' counts (counts version). A user
# without a row has had no such write since the migration: None stands for that state.
VERSIONS = """
SELECT u.name, u.id, r.version, c.version FROM users u
LEFT JOIN user_rules_versions r ON r.user_id = u.id
LEFT JOIN user_counts_versions c ON c.user_id = u.id
WHERE u.name = ANY($1::text[])"""

Version = tuple[int, int | None, int | None]


@cache
def _versioned_page_statement() -> Select[Any]:
    """A user's page with their versions and, per rule, the oldest of the counts it shows
    (PostgreSQL), in one statement: all describe the same snapshot."""
    oldest = (
        select(func.min(models.Generated.when))
        .where(models.Generated.rule_id == R.id, models.Generated.when >= bindparam("since"))
        .scalar_subquery()
    )
    rules_version = (
        select(models.UserRulesVersion.version)
        .where(models.UserRulesVersion.user_id == U.id)
        .scalar_subquery()
    )
    counts_version = (
        select(models.UserCountsVersion.version)
        .where(models.UserCountsVersion.user_id == U.id)
        .scalar_subquery()
    )
    page = _page_statement("postgresql", True, False, False)
    return page.add_columns(rules_version, counts_version, oldest)


@cache
def _count_statement(by_user: bool, by_id: bool, by_disabled: bool) -> Select[Any]:
    conditions = _conditions(by_user, by_id, by_disabled)
    return select(func.count()).select_from(R).join(U, U.id == R.user_id).where(*conditions)


def _rule(row: Any) -> SimpleNamespace:
    """A row shaped like the ORM's Rule, as far as rule_to_schema reads it."""
    rid, name, disabled, muted, uid, uname, tname, tparams, _, gens, dests, filters = row[:12]
    generation = {
        gid: SimpleNamespace(id=gid, destinations=[], filters=[]) for (gid,) in sorted(gens or [])
    }
    for gid, _id, protocol, address in sorted(dests or [], key=lambda d: d[1]):
        generation[gid].destinations.append(SimpleNamespace(protocol=protocol, address=address))
    for gid, _id, filter_name, filter_params in sorted(filters or [], key=lambda f: f[1]):
        generation[gid].filters.append(SimpleNamespace(name=filter_name, params=filter_params))
    return SimpleNamespace(
        id=rid,
        name=name,
        disabled=disabled,
        muted_until=muted,
        user=SimpleNamespace(id=uid, name=uname),
        tracking_rule=SimpleNamespace(name=tname, params=tparams),
        generation_rules=list(generation.values()),
    )


async def read_rules(
    session: AsyncSession,
    *,
    username: str | None = None,
    rule_id: int | None = None,
    disabled: bool | None = None,
    offset: int = 0,
    limit: int = 1,
) -> tuple[list[RulePublic], int]:
    """One page of the rules matching the given conditions, by id, and how many match."""
    shape = (username is not None, rule_id is not None, disabled is not None)
    connection = await session.connection()
    statement = _page_statement(connection.dialect.name, *shape)
    values = _values(username, rule_id, disabled, offset, limit)
    rows = (await connection.execute(statement, values)).all()
    if not rows:
        return [], await _total_past_the_end(session, shape, values)
    return _public(rows), int(rows[0][12])


async def read_user_page(
    session: AsyncSession, username: str, offset: int, limit: int, since: dt.datetime
) -> tuple[list[RulePublic], int, Version | None, dt.datetime | None]:
    """PostgreSQL: one page of a user's rules with the counts since `since`, how many rules
    they have, their versions (None when the page is empty), and the oldest count the page
    shows (None: none)."""
    values = _values(username, None, None, offset, limit)
    values["since"] = since
    connection = await session.connection()
    rows = (await connection.execute(_versioned_page_statement(), values)).all()
    if not rows:
        return [], await _total_past_the_end(session, (True, False, False), values), None, None
    first = rows[0]
    oldest = min((row[15] for row in rows if row[15] is not None), default=None)
    return _public(rows), int(first[12]), (first[4], first[13], first[14]), oldest


def week_ago() -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(days=7)


def _values(
    username: str | None, rule_id: int | None, disabled: bool | None, offset: int, limit: int
) -> dict[str, Any]:
    return {
        "username": username,
        "rule_id": rule_id,
        "disabled": disabled,
        "since": week_ago(),
        "offset": offset,
        "limit": limit,
    }


async def _total_past_the_end(
    session: AsyncSession, shape: tuple[bool, bool, bool], values: dict[str, Any]
) -> int:
    """The total when a page came back empty (the window count is not there to read)."""
    if not values["offset"]:
        return 0
    connection = await session.connection()
    return int((await connection.execute(_count_statement(*shape), values)).scalar_one())


def _public(rows: Any) -> list[RulePublic]:
    return [
        # rule_to_schema validated everything; adding muted_until needs no second validation.
        RulePublic.model_construct(
            **rule_to_schema(typing.cast(models.Rule, _rule(row)), int(row[8])).__dict__,
            muted_until=row[3],
        )
        for row in rows
    ]

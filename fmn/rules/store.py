"""Rules between the database and their JSON shape (fmn/rules/schema.py): the one reader
(`read_rules`, for the consumer's index, every API route, the admin lists and `fmn rules
export`) and the writer of a rule's ORM graph."""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import JSON, Select, bindparam, func, literal, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import selectinload

from fmn.db import models
from fmn.rules import schema

RULE_LOAD_OPTIONS = (
    selectinload(models.Rule.user),
    selectinload(models.Rule.tracking_rule),
    selectinload(models.Rule.generation_rules).selectinload(models.GenerationRule.destinations),
    selectinload(models.Rule.generation_rules).selectinload(models.GenerationRule.filters),
)


def filters_to_rows(filters: schema.Filters) -> list[models.Filter]:
    """One row per filter that differs from its default, as FMN 3 stores them."""
    defaults = schema.Filters()
    rows = []
    for name in schema.FILTER_NAMES:
        value = getattr(filters, name)
        if value != getattr(defaults, name):
            rows.append(models.Filter(name=name, params=value))
    return rows


def apply_to_model(rule: models.Rule, data: schema.RuleBase, *, keep_ids: bool = False) -> None:
    """Write a rule's JSON into its ORM graph, replacing tracking and generation rules."""
    rule.name = data.name
    rule.disabled = data.disabled
    tracking_params = data.tracking_rule.model_dump(mode="json")["params"]
    if getattr(rule, "tracking_rule", None) is None:
        rule.tracking_rule = models.TrackingRule(
            name=data.tracking_rule.name, params=tracking_params
        )
    else:
        rule.tracking_rule.name = data.tracking_rule.name
        rule.tracking_rule.params = tracking_params
    generation_rules = []
    for gr in data.generation_rules:
        row = models.GenerationRule(id=gr.id if keep_ids else None)
        row.destinations = [
            models.Destination(protocol=d.protocol, address=d.address) for d in gr.destinations
        ]
        row.filters = filters_to_rows(gr.filters)
        generation_rules.append(row)
    rule.generation_rules = generation_rules


# ---- the rule reader ------------------------------------------------------------------------
# Every reader of rules goes through `read_rules`: the consumer's index, every API route, the
# admin list and `fmn rules export`. A rule is a `rules` row with its tracking rule (FMN 3: exactly
# one); a row without one (only plain SQL makes it) is no rule and is read by nobody (see
# docs/decisions.md, "One rule reader").

COUNTED_DAYS = 7  # a rule's `generated_last_week`


def week_ago() -> dt.datetime:
    """Where the counts a rule shows begin."""
    return dt.datetime.now(dt.UTC) - dt.timedelta(days=COUNTED_DAYS)


# (user id, rules version, counts version): what PostgreSQL's triggers keep for a user (migration
# 0002); None for a version not written since the migration.
Version = tuple[int, int | None, int | None]


class StoredRule(NamedTuple):
    rule: schema.Rule
    muted_until: dt.datetime | None


@dataclass(frozen=True)
class RulesRead:
    rules: list[StoredRule]
    total: int  # how many rules match, past the page too
    # With `versions` (PostgreSQL): the user's versions read in the same statement (None when
    # the page is empty), and the oldest count the page shows (None: none).
    version: Version | None = None
    oldest_count: dt.datetime | None = None


@dataclass(frozen=True)
class _Shape:
    """Which conditions and columns a statement has; each shape is built once."""

    by_user: bool
    by_id: bool
    by_disabled: bool
    enabled_only: bool
    unmuted: bool
    fmn3_only: bool
    counts: bool
    versions: bool
    paged: bool


R, U, T = models.Rule, models.User, models.TrackingRule
G, D, F = models.GenerationRule, models.Destination, models.Filter


def _json_rows(dialect: str, *columns: Any) -> Any:
    """An aggregate of rows as one JSON array of arrays (PostgreSQL or SQLite)."""
    if dialect == "postgresql":
        return func.json_agg(func.json_build_array(*columns), type_=JSON)
    return func.json_group_array(func.json_array(*columns), type_=JSON)


def _conditions(shape: _Shape) -> list[Any]:
    conditions: list[Any] = []
    if shape.by_user:
        conditions.append(U.name == bindparam("username"))
    if shape.by_id:
        conditions.append(R.id == bindparam("rule_id"))
    if shape.by_disabled:
        conditions.append(R.disabled == bindparam("disabled"))
    if shape.enabled_only:
        conditions.append(R.disabled.is_(False))
    if shape.unmuted:
        unmuted_at: Any = bindparam("unmuted_at")
        conditions.append(or_(R.muted_until.is_(None), R.muted_until <= unmuted_at))
    if shape.fmn3_only:
        conditions.append(T.name.in_(schema.FMN3_TRACKING_RULE_NAMES))
    return conditions


def _joined(statement: Select[Any], shape: _Shape) -> Select[Any]:
    return (
        statement.join(U, U.id == R.user_id).join(T, T.rule_id == R.id).where(*_conditions(shape))
    )


_NO_JIT = text("SET LOCAL jit = off")


def _bulk(shape: _Shape) -> bool:
    """Whether the statement reads every rule that passes its conditions (the consumer's index,
    an export), rather than one user's, one rule or one page."""
    return not (shape.by_user or shape.by_id or shape.paged)


@cache
def _statement(dialect: str, shape: _Shape) -> Select[Any]:
    """Rules in one round trip: each with its owner, tracking rule, week's count, and its
    generation rules, destinations and filters as JSON arrays, and how many match. Built once
    per dialect and shape (building costs more than running); values come as bind parameters."""
    since: Any = bindparam("since")
    week: Any = literal(0)
    if shape.counts:
        week = (
            select(func.coalesce(func.sum(models.Generated.count), 0))
            .where(models.Generated.rule_id == R.id, models.Generated.when >= since)
            .scalar_subquery()
        )
    params = F.params if dialect == "postgresql" else func.json(F.params)
    parts = (
        # (what is aggregated, the join that brings it, if any)
        ((G.id,), None),
        ((G.id, D.id, D.protocol, D.address), (D, D.generation_rule_id == G.id)),
        ((G.id, F.id, F.name, params), (F, F.generation_rule_id == G.id)),
    )
    aggregated: list[Any] = []
    grouped: list[Any] = []
    for number, (aggregate, join) in enumerate(parts):
        part = select(_json_rows(dialect, *aggregate).label("rows"))
        if join is not None:
            part = part.join(*join)
        if _bulk(shape):
            # Every rule: each part aggregated in one pass and joined by rule, instead of a
            # look-up per rule (a subquery per rule and part: 150,000 index look-ups for
            # 50,000 rules, and a cost that made PostgreSQL JIT-compile the statement).
            table = part.add_columns(G.rule_id).group_by(G.rule_id).subquery(f"part_{number}")
            grouped.append(table)
            aggregated.append(table.c.rows)
        else:
            aggregated.append(part.where(G.rule_id == R.id).scalar_subquery())
    generation, destinations, filters = aggregated
    columns: list[Any] = [
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
        # How many match, past the page (unpaged: the rows themselves say it).
        func.count().over() if shape.paged else literal(0),
    ]
    if shape.versions:
        # The user's versions and, per rule, the oldest of the counts it shows: all of the
        # same snapshot as the rules (fmn.api.rule_cache).
        columns += [
            select(models.UserRulesVersion.version)
            .where(models.UserRulesVersion.user_id == U.id)
            .scalar_subquery(),
            select(models.UserCountsVersion.version)
            .where(models.UserCountsVersion.user_id == U.id)
            .scalar_subquery(),
            select(func.min(models.Generated.when))
            .where(models.Generated.rule_id == R.id, models.Generated.when >= since)
            .scalar_subquery(),
        ]
    statement = select(*columns).select_from(R)
    for table in grouped:
        statement = statement.outerjoin(table, table.c.rule_id == R.id)
    statement = _joined(statement, shape).order_by(R.id)
    if shape.paged:
        statement = statement.offset(bindparam("offset")).limit(bindparam("limit"))
    return statement


@cache
def _count_statement(shape: _Shape) -> Select[Any]:
    return _joined(select(func.count()).select_from(R), shape)


def _stored(row: Any) -> StoredRule:
    """A row of `_statement` as a rule (validated: rows written by plain SQL or an old
    version are checked as an API request would be)."""
    rid, name, disabled, muted, uid, uname, tname, tparams, week, gens, dests, filters = row[:12]
    generation: dict[int, dict[str, Any]] = {
        gid: {"id": gid, "destinations": [], "filters": {}} for (gid,) in sorted(gens or [])
    }
    for gid, _id, protocol, address in sorted(dests or [], key=lambda d: d[1]):
        generation[gid]["destinations"].append({"protocol": protocol, "address": address})
    for gid, _id, filter_name, filter_params in sorted(filters or [], key=lambda f: f[1]):
        if filter_name in schema.FILTER_NAMES:
            generation[gid]["filters"][filter_name] = filter_params
    rule = schema.Rule.model_validate(
        {
            "id": rid,
            "name": name,
            "disabled": disabled,
            "user": {"id": uid, "name": uname, "is_admin": False},
            "tracking_rule": {"name": tname, "params": tparams},
            "generation_rules": list(generation.values()),
            "generated_last_week": int(week),
        }
    )
    return StoredRule(rule, muted)


def _shaped(rows: Sequence[Any]) -> list[StoredRule]:
    """The rows as rules, with the cyclic garbage collector paused: the objects made here live
    on (a consumer keeps 10,000s of rules), and collections triggered by their allocation
    rescanned the growing heap again and again (50,000 rules: 5.3 s of CPU with, 2.3 s
    without). No other task runs meanwhile (nothing here awaits)."""
    paused = gc.isenabled()
    gc.disable()
    try:
        return [_stored(row) for row in rows]
    finally:
        if paused:
            gc.enable()


async def read_rules(
    session: AsyncSession | AsyncConnection,
    *,
    username: str | None = None,
    rule_id: int | None = None,
    disabled: bool | None = None,
    enabled_only: bool = False,
    unmuted_at: dt.datetime | None = None,
    fmn3_only: bool = False,
    counts: bool = True,
    since: dt.datetime | None = None,
    versions: bool = False,
    offset: int = 0,
    limit: int | None = None,
) -> RulesRead:
    """The rules matching every condition given, by id: one user's, one rule, disabled or not,
    enabled only, not muted at a time, only of FMN 3's tracking rules; with their counts since
    `since` (default: a week ago) or none; one page (`offset`, `limit`) or all. `versions`
    (PostgreSQL, with `username`): also the user's versions, for the rules list's cache."""
    shape = _Shape(
        by_user=username is not None,
        by_id=rule_id is not None,
        by_disabled=disabled is not None,
        enabled_only=enabled_only,
        unmuted=unmuted_at is not None,
        fmn3_only=fmn3_only,
        counts=counts,
        versions=versions,
        paged=limit is not None,
    )
    values = {
        "username": username,
        "rule_id": rule_id,
        "disabled": disabled,
        "unmuted_at": unmuted_at,
        "since": since or week_ago(),
        "offset": offset,
        "limit": limit,
    }
    connection = session if isinstance(session, AsyncConnection) else await session.connection()
    if _bulk(shape) and connection.dialect.name == "postgresql" and connection.in_transaction():
        # Compiling the statement for every rule costs PostgreSQL's JIT more than running it
        # (measured: 1.7 s of 4.6 s for 50,000 rules); for this transaction only.
        await connection.execute(_NO_JIT)
    rows = (await connection.execute(_statement(connection.dialect.name, shape), values)).all()
    if not rows:
        total = 0
        if offset:  # past the end: the window count is not there to read
            total = (await connection.execute(_count_statement(shape), values)).scalar_one()
        return RulesRead([], int(total))
    rules = _shaped(rows)
    total = int(rows[0][12]) if limit is not None else len(rows)
    if not versions:
        return RulesRead(rules, total)
    first = rows[0]
    oldest = min((row[15] for row in rows if row[15] is not None), default=None)
    return RulesRead(rules, total, (first[4], first[13], first[14]), oldest)


async def owners_unmuted_between(
    session: AsyncSession, start: dt.datetime, end: dt.datetime
) -> list[str]:
    """Users with a rule whose mute ended in [start, end): their rules generate again."""
    rows = await session.scalars(
        select(models.User.name)
        .join(models.Rule.user)
        .where(models.Rule.muted_until >= start, models.Rule.muted_until < end)
        .distinct()
    )
    return list(rows.all())


async def get_or_create_user(session: AsyncSession, name: str) -> models.User:
    user = await session.scalar(select(models.User).where(models.User.name == name))
    if user is None:
        user = models.User(name=name)
        session.add(user)
        await session.flush()
    return user

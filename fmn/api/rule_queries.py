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


@cache
def _count_statement(by_user: bool, by_id: bool, by_disabled: bool) -> Select[Any]:
    conditions = _conditions(by_user, by_id, by_disabled)
    return select(func.count()).select_from(R).join(U, U.id == R.user_id).where(*conditions)


def _rule(row: Any) -> SimpleNamespace:
    """A row shaped like the ORM's Rule, as far as rule_to_schema reads it."""
    rid, name, disabled, muted, uid, uname, tname, tparams, _, gens, dests, filters, _ = row
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
    values = {
        "username": username,
        "rule_id": rule_id,
        "disabled": disabled,
        "since": dt.datetime.now(dt.UTC) - dt.timedelta(days=7),
        "offset": offset,
        "limit": limit,
    }
    connection = await session.connection()
    statement = _page_statement(connection.dialect.name, *shape)
    rows = (await connection.execute(statement, values)).all()
    if not rows:
        total = 0
        if offset:  # past the end: the window count is not there to read
            total = int((await connection.execute(_count_statement(*shape), values)).scalar_one())
        return [], total
    public = [
        # rule_to_schema validated everything; adding muted_until needs no second validation.
        RulePublic.model_construct(
            **rule_to_schema(typing.cast(models.Rule, _rule(row)), int(row[8])).__dict__,
            muted_until=row[3],
        )
        for row in rows
    ]
    return public, int(rows[0][-1])

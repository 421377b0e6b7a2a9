"""Rules between the database and their JSON shape (fmn/rules/schema.py), defined once for the
API, `fmn rules import/export` and the consumer's index loading."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from fmn.db import models
from fmn.rules import schema

RULE_LOAD_OPTIONS = (
    selectinload(models.Rule.user),
    selectinload(models.Rule.tracking_rule),
    selectinload(models.Rule.generation_rules).selectinload(models.GenerationRule.destinations),
    selectinload(models.Rule.generation_rules).selectinload(models.GenerationRule.filters),
)


class _FilterRow(Protocol):
    """A filter as stored: an ORM Filter or a Core row of the filters table."""

    name: str
    params: Any


def filters_to_schema(rows: Sequence[_FilterRow]) -> schema.Filters:
    values = {row.name: row.params for row in rows if row.name in schema.FILTER_NAMES}
    return schema.Filters.model_validate(values)


def filters_to_rows(filters: schema.Filters) -> list[models.Filter]:
    """One row per filter that differs from its default, as FMN 3 stores them."""
    defaults = schema.Filters()
    rows = []
    for name in schema.FILTER_NAMES:
        value = getattr(filters, name)
        if value != getattr(defaults, name):
            rows.append(models.Filter(name=name, params=value))
    return rows


def rule_to_schema(
    rule: models.Rule, generated_last_week: int = 0, is_admin: bool = False
) -> schema.Rule:
    return _rule_schema(
        {"id": rule.id, "name": rule.name, "disabled": rule.disabled},
        {"id": rule.user.id, "name": rule.user.name, "is_admin": is_admin},
        {"name": rule.tracking_rule.name, "params": rule.tracking_rule.params},
        [
            (
                gr.id,
                [{"protocol": d.protocol, "address": d.address} for d in gr.destinations],
                gr.filters,
            )
            for gr in rule.generation_rules
        ],
        generated_last_week,
    )


def _rule_schema(
    rule: dict[str, Any],
    user: dict[str, Any],
    tracking_rule: dict[str, Any],
    generation_rules: Sequence[tuple[int, list[dict[str, str]], Sequence[_FilterRow]]],
    generated_last_week: int,
) -> schema.Rule:
    """The JSON model of a rule from its parts (filters: rows with `name` and `params`)."""
    return schema.Rule.model_validate(
        {
            **rule,
            "user": user,
            "tracking_rule": tracking_rule,
            "generation_rules": [
                {"id": gr_id, "destinations": destinations, "filters": filters_to_schema(filters)}
                for gr_id, destinations, filters in generation_rules
            ],
            "generated_last_week": generated_last_week,
        }
    )


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


async def generated_since(
    session: AsyncSession, rule_ids: Sequence[int], since: dt.datetime
) -> dict[int, int]:
    """Notifications generated per rule since a time."""
    if not rule_ids:
        return {}
    rows = await session.execute(
        select(models.Generated.rule_id, func.sum(models.Generated.count))
        .where(models.Generated.rule_id.in_(rule_ids), models.Generated.when >= since)
        .group_by(models.Generated.rule_id)
    )
    return {rule_id: int(total or 0) for rule_id, total in rows.all()}


async def load_rules(
    session: AsyncSession,
    *,
    username: str | None = None,
    enabled_only: bool = False,
    with_counts: bool = True,
    unmuted_at: dt.datetime | None = None,
) -> list[schema.Rule]:
    """Rules as JSON models, ordered by id; optionally one user's, optionally enabled only,
    optionally without the rules muted at a given time.

    Read with four Core queries (rules with owner and tracking rule; generation rules;
    destinations; filters), not through the ORM: a consumer loads every rule at start, and
    building ORM objects took most of that time (5 s for 10,000 rules)."""
    R, U, T = models.Rule, models.User, models.TrackingRule
    conditions: list[Any] = []
    if username is not None:
        conditions.append(U.name == username)
    if enabled_only:
        conditions.append(R.disabled.is_(False))
    if unmuted_at is not None:
        conditions.append(or_(R.muted_until.is_(None), R.muted_until <= unmuted_at))
    selected = select(R.id).join(U, R.user_id == U.id).where(*conditions)
    rows = (
        await session.execute(
            select(R.id, R.name, R.disabled, U.id, U.name, T.name, T.params)
            .join(U, R.user_id == U.id)
            .join(T, T.rule_id == R.id)
            .where(*conditions)
            .order_by(R.id)
        )
    ).all()
    G, D, F = models.GenerationRule, models.Destination, models.Filter
    generation: dict[int, list[tuple[int, list[dict[str, str]], list[Any]]]] = defaultdict(list)
    by_id: dict[int, tuple[int, list[dict[str, str]], list[Any]]] = {}
    for gr_id, rule_id in await session.execute(
        select(G.id, G.rule_id).where(G.rule_id.in_(selected)).order_by(G.id)
    ):
        by_id[gr_id] = (gr_id, [], [])
        generation[rule_id].append(by_id[gr_id])
    for gr_id, protocol, address in await session.execute(
        select(D.generation_rule_id, D.protocol, D.address)
        .join(G, D.generation_rule_id == G.id)
        .where(G.rule_id.in_(selected))
        .order_by(D.id)
    ):
        by_id[gr_id][1].append({"protocol": protocol, "address": address})
    for filter_row in await session.execute(
        select(F.generation_rule_id, F.name, F.params)
        .join(G, F.generation_rule_id == G.id)
        .where(G.rule_id.in_(selected))
        .order_by(F.id)
    ):
        by_id[filter_row.generation_rule_id][2].append(filter_row)
    counts: dict[int, int] = {}
    if with_counts:
        week_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=7)
        counts = await generated_since(session, [row[0] for row in rows], week_ago)
    return [
        _rule_schema(
            {"id": rule_id, "name": name, "disabled": disabled},
            {"id": user_id, "name": user_name, "is_admin": False},
            {"name": tracking_name, "params": tracking_params},
            generation.get(rule_id, []),
            counts.get(rule_id, 0),
        )
        for rule_id, name, disabled, user_id, user_name, tracking_name, tracking_params in rows
    ]


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

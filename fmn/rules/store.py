"""Rules between the database and their JSON shape (fmn/rules/schema.py), defined once for the
API, `fmn rules import/export` and the consumer's index loading."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

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


def filters_to_schema(rows: Sequence[models.Filter]) -> schema.Filters:
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
    return schema.Rule.model_validate(
        {
            "id": rule.id,
            "name": rule.name,
            "disabled": rule.disabled,
            "user": {"id": rule.user.id, "name": rule.user.name, "is_admin": is_admin},
            "tracking_rule": {
                "name": rule.tracking_rule.name,
                "params": rule.tracking_rule.params,
            },
            "generation_rules": [
                {
                    "id": gr.id,
                    "destinations": [
                        {"protocol": d.protocol, "address": d.address} for d in gr.destinations
                    ],
                    "filters": filters_to_schema(gr.filters),
                }
                for gr in rule.generation_rules
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
    optionally without the rules muted at a given time."""
    query = select(models.Rule).options(*RULE_LOAD_OPTIONS).order_by(models.Rule.id)
    if username is not None:
        query = query.join(models.Rule.user).where(models.User.name == username)
    if enabled_only:
        query = query.where(models.Rule.disabled.is_(False))
    if unmuted_at is not None:
        query = query.where(
            or_(models.Rule.muted_until.is_(None), models.Rule.muted_until <= unmuted_at)
        )
    rules = (await session.scalars(query)).all()
    counts: dict[int, int] = {}
    if with_counts:
        week_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=7)
        counts = await generated_since(session, [r.id for r in rules], week_ago)
    return [rule_to_schema(r, counts.get(r.id, 0)) for r in rules]


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

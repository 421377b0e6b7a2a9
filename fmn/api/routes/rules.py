"""/users/{username}/rules: a user's own rules (403 for anyone else). Every change is
committed first and then announced on the bus."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from fmn.api import rule_requests
from fmn.api.deps import (
    AllKinds,
    DirectoryDep,
    Owner,
    ReadSessionDep,
    RuleId,
    ServicesDep,
    SessionDep,
    Username,
)
from fmn.api.pagination import PageDep
from fmn.api.schemas import DayCount, RulePatch, RulePublic, RuleStats
from fmn.db import models
from fmn.rules import schema
from fmn.rules.store import read_rules

router = APIRouter(prefix="/users/{username}/rules", tags=["users/rules"])


@router.get("", response_model=list[RulePublic])
async def list_rules(
    owner: Owner, page: PageDep, request: Request, all_kinds: AllKinds = False
) -> Response:
    """The user's rules by id, each with its notification count of the last 7 days."""
    # The services from the app and the name from the owner (checked against the path by
    # `Owner`): each parameter or dependency costs FastAPI's resolution on every request.
    return await rule_requests.rules_page(
        request.app.state.services, owner.name, page, fmn3_only=not all_kinds
    )


async def rule_writer(
    username: Username,
    _owner: Owner,
    session: SessionDep,
    directory: DirectoryDep,
    services: ServicesDep,
) -> rule_requests.RuleWriter:
    return rule_requests.RuleWriter(username, session, directory, services)


Writer = Annotated[rule_requests.RuleWriter, Depends(rule_writer)]


@router.post("", response_model=RulePublic)
async def create_rule(username: Username, rule: schema.RuleCreate, writer: Writer) -> RulePublic:
    return await writer.create(rule)


@router.get("/{id}", response_model=RulePublic)
async def get_rule(
    username: Username, rule_id: RuleId, _owner: Owner, session: ReadSessionDep
) -> RulePublic:
    read = await read_rules(session, username=username, rule_id=rule_id)
    if not read.rules:
        raise HTTPException(404, f"No rule {rule_id} for {username}")
    return RulePublic.of(read.rules[0])


@router.put("/{id}", response_model=RulePublic)
async def replace_rule(
    username: Username, rule_id: RuleId, rule: schema.RuleUpdate, writer: Writer
) -> RulePublic:
    """Replace the whole rule (FMN 3 sends it back entire; its `id` field is ignored)."""
    return await writer.replace(rule_id, rule)


@router.patch("/{id}", response_model=RulePublic)
async def patch_rule(rule_id: RuleId, patch: RulePatch, writer: Writer) -> RulePublic:
    """Enable, disable or mute the rule; fields left out stay as they are."""
    return await writer.patch(rule_id, patch)


@router.delete("/{id}", response_model=None)
async def delete_rule(rule_id: RuleId, writer: Writer) -> None:
    """Delete the rule (answers `null`, as FMN 3 does)."""
    await writer.delete(rule_id)


@router.get("/{id}/stats", response_model=RuleStats)
async def rule_stats(
    username: Username,
    rule_id: RuleId,
    _owner: Owner,
    session: ReadSessionDep,
    days: Annotated[int, Query(ge=1, le=366)] = 30,
) -> RuleStats:
    """Notifications the rule generated per day (UTC), oldest first, zeros included."""
    await rule_requests.get_rule(session, username, rule_id)
    today = dt.datetime.now(dt.UTC).date()
    first = today - dt.timedelta(days=days - 1)
    since = dt.datetime.combine(first, dt.time(), tzinfo=dt.UTC)
    day = _day_expression(session)
    rows = await session.execute(
        select(day, func.sum(models.Generated.count))
        .where(models.Generated.rule_id == rule_id, models.Generated.when >= since)
        .group_by(day)
    )
    counts = {_as_date(d): int(n or 0) for d, n in rows.all()}
    dates = [first + dt.timedelta(days=i) for i in range(days)]
    series = [DayCount(date=d, count=counts.get(d, 0)) for d in dates]
    return RuleStats(rule_id=rule_id, series=series)


def _day_expression(session: AsyncSession) -> Any:
    """The UTC day of a Generated row, in the database's dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone("UTC", models.Generated.when))
    return func.date(models.Generated.when)


def _as_date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))

"""A user's own settings (digests, quiet hours, time zone, mute all) and delivery history."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy import Integer, cast, exists, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from fmn.api.deps import MAX_ID, Owner, ReadSessionDep, SessionDep, Username
from fmn.api.pagination import PageDep, paginate
from fmn.api.schemas import NotificationPublic, QuietHours, SettingsPublic, SettingsUpdate
from fmn.db import models
from fmn.rules.store import get_or_create_user

router = APIRouter(prefix="/users/{username}", tags=["users/settings"])


def _public(row: models.UserSettings | None) -> SettingsPublic:
    if row is None:
        return SettingsPublic()
    quiet = None
    if row.quiet_hours_start is not None and row.quiet_hours_end is not None:
        quiet = QuietHours(
            start=row.quiet_hours_start.strftime("%H:%M"),
            end=row.quiet_hours_end.strftime("%H:%M"),
        )
    return SettingsPublic(
        digest_mode=row.digest_mode,
        quiet_hours=quiet,
        timezone=row.timezone,
        muted_until=row.muted_until,
    )


async def _settings_row(session: AsyncSession, username: str) -> models.UserSettings | None:
    return await session.scalar(
        select(models.UserSettings)
        .join(models.UserSettings.user)
        .where(models.User.name == username)
    )


@router.get("/settings", response_model=SettingsPublic)
async def get_settings(
    username: Username, _owner: Owner, session: ReadSessionDep
) -> SettingsPublic:
    return _public(await _settings_row(session, username))


@router.put("/settings", response_model=SettingsPublic)
async def put_settings(
    username: Username, update: SettingsUpdate, _owner: Owner, session: SessionDep
) -> SettingsPublic:
    """Replace the settings; `muted_until` mutes every rule until then (null: not muted)."""
    row = await _settings_row(session, username)
    if row is None:
        user = await get_or_create_user(session, username)
        row = models.UserSettings(user_id=user.id)
        session.add(row)
    row.digest_mode = update.digest_mode
    row.timezone = update.timezone
    row.muted_until = update.muted_until
    quiet = update.quiet_hours
    row.quiet_hours_start = dt.time.fromisoformat(quiet.start) if quiet else None
    row.quiet_hours_end = dt.time.fromisoformat(quiet.end) if quiet else None
    await session.commit()
    return _public(row)


Status = Annotated[models.DeliveryStatus | None, Query()]


@router.get("/notifications", response_model=list[NotificationPublic], tags=["users/history"])
async def list_notifications(
    username: Username,
    _owner: Owner,
    session: ReadSessionDep,
    page: PageDep,
    response: Response,
    status: Status = None,
    rule_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> list[NotificationPublic]:
    """The delivery log: what was sent, held, retried or given up, newest first."""
    delivery = models.Delivery
    query = (
        select(delivery)
        .where(delivery.user_name == username)
        .order_by(delivery.created_at.desc(), delivery.id.desc())
    )
    if status is not None:
        query = query.where(delivery.status == status)
    if rule_id is not None:
        if session.get_bind().dialect.name == "postgresql":
            query = query.where(cast(delivery.rule_ids, JSONB).contains([rule_id]))
        else:
            each = func.json_each(delivery.rule_ids).table_valued("value")
            query = query.where(exists().where(cast(each.c.value, Integer) == rule_id))
    rows = await paginate(session, query, page, response)
    return [NotificationPublic.model_validate(row, from_attributes=True) for row in rows]

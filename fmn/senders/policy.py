"""When a user wants to be told: now, or later in a digest (digest mode, quiet hours, mute).

The sender reads these settings itself (cached briefly) rather than taking them from the work
item, so that a change, such as ending a mute early, also applies to notifications already held.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fmn.db.models import DigestMode, User, UserSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Preferences:
    digest_mode: DigestMode = DigestMode.NONE
    quiet_start: dt.time | None = None
    quiet_end: dt.time | None = None
    timezone: str = "UTC"
    muted_until: dt.datetime | None = None


DEFAULT = Preferences()


@dataclass(frozen=True)
class Hold:
    reason: str  # "muted", "quiet-hours", "digest-hourly", "digest-daily"
    until: dt.datetime


def _zone(name: str) -> dt.tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def quiet_hours_end(prefs: Preferences, now: dt.datetime) -> dt.datetime | None:
    """The end of the quiet period `now` falls in, or None outside quiet hours."""
    start, end = prefs.quiet_start, prefs.quiet_end
    if start is None or end is None or start == end:
        return None
    local = now.astimezone(_zone(prefs.timezone))
    t = local.time().replace(tzinfo=None)
    if start < end:
        inside = start <= t < end
    else:  # spans midnight, e.g. 22:00-07:00
        inside = t >= start or t < end
    if not inside:
        return None
    candidate = dt.datetime.combine(local.date(), end, tzinfo=local.tzinfo)
    if candidate <= local:
        candidate += dt.timedelta(days=1)
    return candidate.astimezone(dt.UTC)


def next_digest_time(prefs: Preferences, now: dt.datetime, daily_hour: int) -> dt.datetime | None:
    if prefs.digest_mode == DigestMode.HOURLY:
        top = now.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
        return top + dt.timedelta(hours=1)
    if prefs.digest_mode == DigestMode.DAILY:
        local = now.astimezone(_zone(prefs.timezone))
        candidate = local.replace(hour=daily_hour, minute=0, second=0, microsecond=0)
        if candidate <= local:
            candidate += dt.timedelta(days=1)
        return candidate.astimezone(dt.UTC)
    return None


def hold_for(prefs: Preferences, now: dt.datetime, daily_hour: int) -> Hold | None:
    """Why and until when a notification arriving `now` waits; None to send it now.

    A muted or quiet user's notifications wait until the period ends; with a digest mode
    they then wait for the next digest."""
    if prefs.muted_until is not None and _aware(prefs.muted_until) > now:
        return Hold("muted", _aware(prefs.muted_until))
    quiet_end = quiet_hours_end(prefs, now)
    if quiet_end is not None:
        return Hold("quiet-hours", quiet_end)
    digest = next_digest_time(prefs, now, daily_hour)
    if digest is not None:
        return Hold(f"digest-{prefs.digest_mode.value}", digest)
    return None


def still_waiting(prefs: Preferences, now: dt.datetime) -> dt.datetime | None:
    """For held items that fell due: a later time if the user is (again) muted or quiet."""
    if prefs.muted_until is not None and _aware(prefs.muted_until) > now:
        return _aware(prefs.muted_until)
    return quiet_hours_end(prefs, now)


class PreferenceReader:
    """Users' settings from the database. Only users who changed something have a row, so the
    whole table is read in one query and re-read after `ttl` seconds: no query per notification
    or per user, however many users there are."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession] | None, ttl: float) -> None:
        self.sessionmaker = sessionmaker
        self.ttl = ttl
        self._prefs: dict[str, Preferences] = {}
        self._fresh_until = -1.0
        self._lock = asyncio.Lock()

    async def get(self, user: str) -> Preferences:
        if time.monotonic() >= self._fresh_until:
            async with self._lock:
                if time.monotonic() >= self._fresh_until:
                    await self._load()
        return self._prefs.get(user, DEFAULT)

    async def _load(self) -> None:
        if self.sessionmaker is None:
            self._fresh_until = float("inf")
            return
        try:
            async with self.sessionmaker() as session:
                rows = (await session.execute(select(User.name, UserSettings).join(User))).all()
        except Exception:
            # Keep the last known settings (or deliver now) rather than stall; retry soon.
            log.exception("could not read user settings; keeping the last known ones")
            self._fresh_until = time.monotonic() + min(self.ttl, 5.0)
            return
        self._prefs = {
            name: Preferences(
                digest_mode=row.digest_mode,
                quiet_start=row.quiet_hours_start,
                quiet_end=row.quiet_hours_end,
                timezone=row.timezone,
                muted_until=row.muted_until,
            )
            for name, row in rows
        }
        self._fresh_until = time.monotonic() + self.ttl

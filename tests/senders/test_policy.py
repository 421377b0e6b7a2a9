"""When a notification waits: mute, quiet hours (in the user's timezone), digest periods."""

from __future__ import annotations

import datetime as dt

from fmn.db.models import DigestMode
from fmn.senders.state import Hold, Preferences, hold_for, still_waiting

UTC = dt.UTC


def at(hour: int, minute: int = 0, day: int = 1) -> dt.datetime:
    return dt.datetime(2024, 5, day, hour, minute, tzinfo=UTC)


def test_no_settings_send_now() -> None:
    assert hold_for(Preferences(), at(12), daily_hour=8) is None


def test_mute_holds_until_it_ends() -> None:
    prefs = Preferences(muted_until=at(15))
    assert hold_for(prefs, at(12), 8) == Hold("muted", at(15))
    assert hold_for(prefs, at(15, 1), 8) is None
    # A naive timestamp from the database is UTC.
    naive = Preferences(muted_until=dt.datetime(2024, 5, 1, 15))
    assert hold_for(naive, at(12), 8) == Hold("muted", at(15))


def test_quiet_hours_across_midnight_in_the_users_timezone() -> None:
    prefs = Preferences(
        quiet_start=dt.time(22), quiet_end=dt.time(7), timezone="Europe/Paris"
    )  # UTC+2 in May
    assert hold_for(prefs, at(19, 59), 8) is None  # 21:59 in Paris
    assert hold_for(prefs, at(20, 0), 8) == Hold("quiet-hours", at(5, day=2))
    assert hold_for(prefs, at(3, 0, day=2), 8) == Hold("quiet-hours", at(5, day=2))
    assert hold_for(prefs, at(5, 0, day=2), 8) is None


def test_quiet_hours_within_a_day_and_unknown_timezone() -> None:
    prefs = Preferences(quiet_start=dt.time(9), quiet_end=dt.time(17), timezone="Nowhere/Land")
    assert hold_for(prefs, at(10), 8) == Hold("quiet-hours", at(17))
    assert hold_for(prefs, at(17), 8) is None


def test_digest_periods() -> None:
    hourly = Preferences(digest_mode=DigestMode.HOURLY)
    assert hold_for(hourly, at(10, 20), 8) == Hold("digest-hourly", at(11))
    daily = Preferences(digest_mode=DigestMode.DAILY, timezone="America/New_York")  # UTC-4
    assert hold_for(daily, at(10), 8) == Hold("digest-daily", at(12))
    assert hold_for(daily, at(13), 8) == Hold("digest-daily", at(12, day=2))


def test_mute_comes_before_the_digest() -> None:
    prefs = Preferences(digest_mode=DigestMode.HOURLY, muted_until=at(18))
    assert hold_for(prefs, at(12), 8) == Hold("muted", at(18))


def test_held_items_wait_again_if_the_user_is_muted_again() -> None:
    assert still_waiting(Preferences(muted_until=at(20)), at(18)) == at(20)
    assert still_waiting(Preferences(digest_mode=DigestMode.DAILY), at(18)) is None

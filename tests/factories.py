"""Factories for rule-store objects (warehouse style: small, explicit, overridable)."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from fmn.db import models

_seq = itertools.count(1)


async def make_user(session: AsyncSession, name: str | None = None) -> models.User:
    user = models.User(name=name or f"user{next(_seq)}")
    session.add(user)
    await session.flush()
    return user


async def make_rule(
    session: AsyncSession,
    user: models.User | None = None,
    *,
    name: str | None = "a rule",
    tracking: str = "related-events",
    params: Any = None,
    destinations: list[tuple[str, str]] | None = None,
    filters: dict[str, Any] | None = None,
    disabled: bool = False,
) -> models.Rule:
    user = user or await make_user(session)
    rule = models.Rule(name=name, disabled=disabled, user=user)
    rule.tracking_rule = models.TrackingRule(name=tracking, params=params)
    generation = models.GenerationRule()
    for protocol, address in destinations or [("email", f"{user.name}@example.org")]:
        generation.destinations.append(models.Destination(protocol=protocol, address=address))
    for filter_name, filter_params in (filters or {}).items():
        generation.filters.append(models.Filter(name=filter_name, params=filter_params))
    rule.generation_rules.append(generation)
    session.add(rule)
    await session.flush()
    return rule


async def make_inbox_entry(
    session: AsyncSession,
    user: models.User,
    rule: models.Rule | None = None,
    *,
    subject: str | None = None,
    application: str | None = "koji",
    read: bool = False,
    created_at: dt.datetime | None = None,
) -> models.InboxEntry:
    n = next(_seq)
    now = created_at or dt.datetime.now(dt.UTC)
    entry = models.InboxEntry(
        user_id=user.id,
        key=f"msg-{n}/web/{user.name}",
        subject=subject or f"[{application}] build {n} of foo completed",
        text=f"build {n} of foo completed",
        link=f"https://koji.example.org/buildinfo?buildID={n}",
        application=application,
        topic="org.fedoraproject.prod.buildsys.build.state.change",
        message_id=f"msg-{n}",
        message_time=now,
        created_at=now,
        read=read,
    )
    if rule is not None:
        entry.rules.append(models.InboxEntryRule(rule_id=rule.id))
    session.add(entry)
    await session.flush()
    return entry


async def make_push_subscription(
    session: AsyncSession, user: models.User, device: str = "Firefox on Linux"
) -> models.PushSubscription:
    n = next(_seq)
    row = models.PushSubscription(
        user_id=user.id,
        endpoint=f"https://push.example.org/send/{n}",
        p256dh="BN" + "A" * 85,
        auth="A" * 22,
        device=device,
        created_at=dt.datetime.now(dt.UTC),
    )
    session.add(row)
    await session.flush()
    return row

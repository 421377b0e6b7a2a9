"""First login: the user's row and a default rule (FMN 3 #900/#1058: new users got nothing)."""

from __future__ import annotations

import logging

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from fmn.api.announce import Announcer
from fmn.db import models
from fmn.directory.base import Directory
from fmn.rules import schema
from fmn.rules.store import apply_to_model

log = logging.getLogger(__name__)

DEFAULT_RULE_NAME = "My Events"


def default_rule(username: str, email: str | None) -> schema.RuleCreate | None:
    """ "My Events" (the user appears in the message) to their web inbox and their first email
    address (the inbox alone when they have none)."""
    destinations = [{"protocol": "web", "address": username}]
    if email is not None:
        destinations.insert(0, {"protocol": "email", "address": email})
    data = {
        "name": DEFAULT_RULE_NAME,
        "tracking_rule": {"name": "related-events", "params": None},
        "generation_rules": [{"destinations": destinations}],
    }
    try:
        return schema.RuleCreate.model_validate(data)
    except ValidationError:
        if email is None:
            return None
        return default_rule(username, None)  # an address that is no valid address


async def ensure_user(
    session: AsyncSession, directory: Directory, announcer: Announcer, name: str
) -> models.User:
    """The user's row, created with the default rule on first sight. Safe to race: a
    concurrent creation wins and this one reads it."""
    user = await session.scalar(select(models.User).where(models.User.name == name))
    if user is not None:
        return user
    entry = await directory.get_user(name)
    emails = [e for e in (entry or {}).get("emails") or () if isinstance(e, str)]
    user = models.User(name=name)
    # Someone the directory does not know has no address at all, not even the inbox.
    rule_data = default_rule(name, emails[0] if emails else None) if entry else None
    rule = None
    if rule_data is not None:
        rule = models.Rule(user=user)
        apply_to_model(rule, rule_data)
    session.add(user)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        existing = await session.scalar(select(models.User).where(models.User.name == name))
        if existing is None:
            raise
        return existing
    log.info("new user %s%s", name, " with the default rule" if rule else "")
    if rule is not None:
        announcer.announce("create", rule.id, rule.name, name)
    return user

"""Team rules (a group's rules, fmn.core.owners) deliver only to the group's verified team
destinations: a rule read for the consumer keeps, of a team's destinations, only those a
sponsor verified (docs/decisions.md, "Team rules"). The API refuses to save a team rule naming
an unverified one; this is the guard for what came another way (an import, plain SQL, a
destination removed after the rule was saved)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fmn.core.owners import team_of
from fmn.db import models
from fmn.rules import schema

# (group, protocol, address as compared)
Verified = frozenset[tuple[str, str, str]]


def compared(protocol: str, address: str) -> str:
    """An address as two spellings of one destination compare: email addresses and IRC
    channels are case-insensitive, Matrix ids are not."""
    return address if protocol == "matrix" else address.lower()


async def verified_destinations(
    session: AsyncSession, groups: Iterable[str] | None = None
) -> Verified:
    """The verified team destinations, of these groups or of all."""
    query = select(
        models.TeamDestination.group_name,
        models.TeamDestination.protocol,
        models.TeamDestination.address,
    ).where(models.TeamDestination.verified_at.is_not(None))
    if groups is not None:
        query = query.where(models.TeamDestination.group_name.in_(list(groups)))
    rows = await session.execute(query)
    return frozenset((g, p, compared(p, a)) for g, p, a in rows.all())


def deliverable(rules: Iterable[schema.Rule], verified: Verified) -> list[schema.Rule]:
    """The rules with every team destination that is not verified taken out; a generation rule
    left without destinations is dropped, and a rule left without generation rules too."""
    result = []
    for rule in rules:
        group = team_of(rule.user.name)
        if group is None:
            result.append(rule)
            continue
        kept = []
        for generation_rule in rule.generation_rules:
            destinations = [
                d
                for d in generation_rule.destinations
                if (group, d.protocol, compared(d.protocol, d.address)) in verified
            ]
            if destinations:
                kept.append(generation_rule.model_copy(update={"destinations": destinations}))
        if kept:
            result.append(rule.model_copy(update={"generation_rules": kept}))
    return result

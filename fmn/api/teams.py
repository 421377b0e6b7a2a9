"""Team rules and team destinations for the routes (fmn/api/routes/teams.py): who may do what
with a group's rules, and the verification of its destinations.

A group's sponsors (FASJSON, through the directory) create, edit and delete its rules and
destinations; its members and the admins see them; nobody else learns anything, not even
whether the group exists (403 alike). A team rule delivers only to the group's verified
destinations: the API refuses any other (422 naming the field), and the consumer leaves
unverified ones out (fmn.rules.teams).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path
from fastapi.exceptions import RequestValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fmn.api import rule_requests
from fmn.api.auth import Identity
from fmn.api.deps import CurrentUser, DirectoryDep, ServicesDep, SessionDep
from fmn.api.limits import RateLimited
from fmn.api.services import Services
from fmn.api.verification import new_code, normalized_code, verification_item
from fmn.core.owners import team_owner
from fmn.db import models
from fmn.directory import names
from fmn.directory.base import Directory
from fmn.rules import schema
from fmn.rules.teams import compared, verified_destinations
from fmn.sendqueue.workitem import Protocol, pack

GroupName = Annotated[
    str, Path(min_length=1, max_length=schema.MAX_NAME_LENGTH, pattern=names.PATTERN)
]
DestinationId = Annotated[int, Path(ge=1, le=2**31 - 1)]

# A team destination is a list address, a channel or a room: not a person's nick or id.
TEAM_ADDRESS_PATTERNS = {
    "email": schema.EMAIL_RE,
    "irc": schema.IRC_CHANNEL_RE,
    "matrix": schema.MATRIX_ROOM_RE,
}
CODE_LIFETIME = dt.timedelta(hours=1)
RESEND_AFTER = dt.timedelta(seconds=60)
MAX_FAILED_ATTEMPTS = 5


@dataclass(frozen=True)
class TeamAccess:
    group: str
    identity: Identity
    sponsor: bool

    @property
    def owner(self) -> str:
        return team_owner(self.group)


async def team_role(directory: Directory, group: str, username: str) -> tuple[bool, bool]:
    """(member, sponsor) of the user in the group; sponsors count as members."""
    sponsors = await directory.get_group_sponsors(group)
    if username in sponsors:
        return True, True
    return username in await directory.get_group_members(group), False


async def team_reader(
    group: GroupName, identity: CurrentUser, directory: DirectoryDep
) -> TeamAccess:
    """A member or sponsor of the group, or an admin: may see its rules and destinations."""
    member, sponsor = await team_role(directory, group, identity.name)
    if not (member or identity.is_admin):
        raise HTTPException(403, "Not allowed to see this group's rules")
    return TeamAccess(group, identity, sponsor)


async def team_sponsor(
    group: GroupName, identity: CurrentUser, directory: DirectoryDep
) -> TeamAccess:
    """A sponsor of the group: may change its rules and destinations."""
    _member, sponsor = await team_role(directory, group, identity.name)
    if not sponsor:
        raise HTTPException(403, "Only the group's sponsors may change its rules")
    return TeamAccess(group, identity, sponsor)


TeamReader = Annotated[TeamAccess, Depends(team_reader)]
TeamSponsor = Annotated[TeamAccess, Depends(team_sponsor)]


# ---- team rules -----------------------------------------------------------------------------


def _error(loc: tuple[Any, ...], msg: str, value: Any) -> dict[str, Any]:
    return {"type": "value_error", "loc": loc, "msg": msg, "input": value}


async def check_team_rule(session: AsyncSession, group: str, rule: schema.RuleBase) -> None:
    """A team rule: no `related-events` (a person's own events), and every destination one of
    the group's verified team destinations."""
    rule_requests.check_account_names(rule)
    errors = []
    if rule.tracking_rule.name == "related-events":
        msg = "related-events follows a person's own events; a team rule cannot use it"
        errors.append(_error(("body", "tracking_rule", "name"), msg, rule.tracking_rule.name))
    verified = await verified_destinations(session, [group])
    for i, generation_rule in enumerate(rule.generation_rules):
        for j, d in enumerate(generation_rule.destinations):
            if (group, d.protocol, compared(d.protocol, d.address)) not in verified:
                errors.append(
                    _error(
                        ("body", "generation_rules", i, "destinations", j, "address"),
                        f"{d.address} is not a verified {d.protocol} destination of the group "
                        f"{group}: add it on the Team rules page and enter the code sent there",
                        d.address,
                    )
                )
    if errors:
        raise RequestValidationError(errors)


@dataclass
class TeamRuleWriter(rule_requests.RuleWriter):
    """Changes to a group's rules: its owner row is `group:<name>` (fmn.core.owners)."""

    group: str = ""

    async def check(self, rule: schema.RuleBase) -> None:
        await check_team_rule(self.session, self.group, rule)


async def team_rule_writer(
    access: TeamSponsor, session: SessionDep, directory: DirectoryDep, services: ServicesDep
) -> TeamRuleWriter:
    return TeamRuleWriter(access.owner, session, directory, services, group=access.group)


TeamWriter = Annotated[TeamRuleWriter, Depends(team_rule_writer)]


# ---- team destinations ----------------------------------------------------------------------


def check_team_address(protocol: str, address: str) -> None:
    pattern = TEAM_ADDRESS_PATTERNS[protocol]
    if not pattern.fullmatch(address):
        kinds = {"email": "a mailing list address", "irc": "an IRC channel (#name)"}
        kind = kinds.get(protocol, "a Matrix room (!id:server or #alias:server)")
        raise RequestValidationError(
            [_error(("body", "address"), f"{address!r} is not {kind}", address)]
        )


async def get_destination(
    session: AsyncSession, group: str, destination_id: int
) -> models.TeamDestination:
    row = await session.scalar(
        select(models.TeamDestination).where(
            models.TeamDestination.id == destination_id,
            models.TeamDestination.group_name == group,
        )
    )
    if row is None:
        raise HTTPException(404, f"No destination {destination_id} for the group {group}")
    return row


def _hash(destination_id: int, code: str) -> str:
    return hashlib.sha256(f"{destination_id}:{code}".encode()).hexdigest()


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


async def send_code(session: AsyncSession, services: Services, row: models.TeamDestination) -> None:
    """A new code to the destination (the old one stops working); at most one a minute."""
    now = dt.datetime.now(dt.UTC)
    if row.code_sent_at is not None and now - _aware(row.code_sent_at) < RESEND_AFTER:
        wait = int((RESEND_AFTER - (now - _aware(row.code_sent_at))).total_seconds()) + 1
        raise RateLimited(wait, "A code was sent to this destination less than a minute ago")
    code = new_code()
    row.code_hash = _hash(row.id, code)
    row.code_sent_at = now
    row.failed_attempts = 0
    protocol: Protocol = row.protocol  # type: ignore[assignment]
    item = verification_item(
        row.group_name, protocol, row.address, code, services.settings.public_url, now
    )
    # Committed first: a code that went out is always the one the database checks.
    await session.commit()
    broker = await services.get_send_broker()
    await broker.publish(services.settings.send_queue.exchange, pack([item], 1)[0])


async def verify_code(
    session: AsyncSession, services: Services, row: models.TeamDestination, code: str, who: str
) -> None:
    """Mark the destination verified if `code` is the one sent; 422 naming `code` if not."""
    if row.verified_at is not None:
        return

    def refuse(msg: str) -> RequestValidationError:
        return RequestValidationError([_error(("body", "code"), msg, code)])

    now = dt.datetime.now(dt.UTC)
    if row.code_hash is None or row.code_sent_at is None:
        raise refuse("No code was sent to this destination yet: send one first")
    if now - _aware(row.code_sent_at) > CODE_LIFETIME:
        raise refuse("The code has expired: send a new one")
    if row.failed_attempts >= MAX_FAILED_ATTEMPTS:
        raise refuse("Too many wrong codes: send a new one")
    if not hmac.compare_digest(row.code_hash, _hash(row.id, normalized_code(code))):
        row.failed_attempts += 1
        await session.commit()
        raise refuse("That is not the code sent to this destination")
    row.verified_at = now
    row.verified_by = who
    row.code_hash = None
    await session.commit()
    await announce_group_change(session, services, row.group_name)


async def announce_group_change(session: AsyncSession, services: Services, group: str) -> None:
    """The consumer reloads a group's rules on any announcement of one of them: what they may
    deliver to has changed."""
    owner = team_owner(group)
    rows = await session.execute(
        select(models.Rule.id, models.Rule.name)
        .join(models.Rule.user)
        .where(models.User.name == owner)
        .order_by(models.Rule.id)
        .limit(1)
    )
    first = rows.first()
    if first is not None:
        services.announcer.announce("update", first.id, first.name, owner)


async def destination_in_use(session: AsyncSession, row: models.TeamDestination) -> list[int]:
    """Ids of the group's rules that deliver to this destination."""
    rows = await session.execute(
        select(models.Rule.id, models.Destination.address)
        .join(models.Rule.user)
        .join(models.GenerationRule, models.GenerationRule.rule_id == models.Rule.id)
        .join(models.Destination, models.Destination.generation_rule_id == models.GenerationRule.id)
        .where(
            models.User.name == team_owner(row.group_name),
            models.Destination.protocol == row.protocol,
        )
    )
    key = compared(row.protocol, row.address)
    return sorted({rid for rid, address in rows.all() if compared(row.protocol, address) == key})

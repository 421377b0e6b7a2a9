"""Team rules (FMN #179): /groups/{group}/rules, in FMN 3's rule JSON shape, and the group's
destinations with their verification, /groups/{group}/destinations. Sponsors change, members
and admins read (fmn.api.teams); /users/{username}/teams lists the user's groups."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from fmn.api import rule_requests
from fmn.api.deps import DirectoryDep, Owner, ReadSessionDep, RuleId, ServicesDep, SessionDep
from fmn.api.pagination import PageDep, paginate_list
from fmn.api.schemas import (
    RulePatch,
    RulePublic,
    TeamDestinationCreate,
    TeamDestinationPublic,
    TeamDestinationVerify,
    TeamPublic,
)
from fmn.api.teams import (
    DestinationId,
    TeamReader,
    TeamSponsor,
    TeamWriter,
    announce_group_change,
    check_team_address,
    destination_in_use,
    get_destination,
    send_code,
    team_role,
    verify_code,
)
from fmn.db import models
from fmn.rules import schema
from fmn.rules.store import read_rules

router = APIRouter(tags=["teams"])


@router.get("/users/{username}/teams", response_model=list[TeamPublic])
async def list_teams(
    owner: Owner, directory: DirectoryDep, page: PageDep, response: Response
) -> list[TeamPublic]:
    """The groups the logged-in user belongs to, and which of them they sponsor."""
    teams = []
    for group in await directory.get_user_groups(owner.name):
        _member, sponsor = await team_role(directory, group, owner.name)
        teams.append(TeamPublic(group=group, sponsor=sponsor))
    return paginate_list(teams, page, response)


# ---- rules ------------------------------------------------------------------------------------


@router.get("/groups/{group}/rules", response_model=list[RulePublic])
async def list_team_rules(access: TeamReader, page: PageDep, request: Request) -> Response:
    """The group's rules by id, each with its notification count of the last 7 days."""
    return await rule_requests.rules_page(request.app.state.services, access.owner, page)


@router.post("/groups/{group}/rules", response_model=RulePublic)
async def create_team_rule(rule: schema.RuleCreate, writer: TeamWriter) -> RulePublic:
    """A new rule of the group (its sponsors): every destination one of its verified ones."""
    return await writer.create(rule)


@router.get("/groups/{group}/rules/{id}", response_model=RulePublic)
async def get_team_rule(rule_id: RuleId, access: TeamReader, session: ReadSessionDep) -> RulePublic:
    """One of the group's rules (its members, sponsors and the admins)."""
    read = await read_rules(session, username=access.owner, rule_id=rule_id)
    if not read.rules:
        raise HTTPException(404, f"No rule {rule_id} for the group {access.group}")
    return RulePublic.of(read.rules[0])


@router.put("/groups/{group}/rules/{id}", response_model=RulePublic)
async def replace_team_rule(
    rule_id: RuleId, rule: schema.RuleUpdate, writer: TeamWriter
) -> RulePublic:
    """Replace the whole rule, as for a user's own rule."""
    return await writer.replace(rule_id, rule)


@router.patch("/groups/{group}/rules/{id}", response_model=RulePublic)
async def patch_team_rule(rule_id: RuleId, patch: RulePatch, writer: TeamWriter) -> RulePublic:
    """Enable, disable or mute the group's rule."""
    return await writer.patch(rule_id, patch)


@router.delete("/groups/{group}/rules/{id}", response_model=None)
async def delete_team_rule(rule_id: RuleId, writer: TeamWriter) -> None:
    """Delete the group's rule (answers `null`)."""
    await writer.delete(rule_id)


# ---- destinations -----------------------------------------------------------------------------


def _public(row: models.TeamDestination) -> TeamDestinationPublic:
    return TeamDestinationPublic(
        id=row.id,
        protocol=row.protocol,
        address=row.address,
        verified=row.verified_at is not None,
        verified_at=row.verified_at,
        verified_by=row.verified_by,
        code_sent_at=row.code_sent_at,
    )


@router.get("/groups/{group}/destinations", response_model=list[TeamDestinationPublic])
async def list_team_destinations(
    access: TeamReader, session: ReadSessionDep
) -> list[TeamDestinationPublic]:
    """The group's list addresses, IRC channels and Matrix rooms, verified or not."""
    rows = await session.scalars(
        select(models.TeamDestination)
        .where(models.TeamDestination.group_name == access.group)
        .order_by(models.TeamDestination.id)
    )
    return [_public(row) for row in rows]


@router.post(
    "/groups/{group}/destinations",
    response_model=TeamDestinationPublic,
    status_code=status.HTTP_201_CREATED,
)
async def add_team_destination(
    body: TeamDestinationCreate, access: TeamSponsor, session: SessionDep, services: ServicesDep
) -> TeamDestinationPublic:
    """Add a destination and send a verification code to it. For a Matrix room, invite fmn's
    Matrix account first: it joins rooms only on invitation."""
    check_team_address(body.protocol, body.address)
    row = models.TeamDestination(
        group_name=access.group,
        protocol=body.protocol,
        address=body.address,
        failed_attempts=0,
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("body", "address"),
                    "msg": f"{body.address} is a destination of the group already",
                    "input": body.address,
                }
            ]
        ) from None
    await send_code(session, services, row)
    return _public(row)


@router.post(
    "/groups/{group}/destinations/{destination_id}/code", response_model=TeamDestinationPublic
)
async def resend_team_destination_code(
    destination_id: DestinationId, access: TeamSponsor, session: SessionDep, services: ServicesDep
) -> TeamDestinationPublic:
    """Send a new code (at most one a minute); the previous one stops working."""
    row = await get_destination(session, access.group, destination_id)
    await send_code(session, services, row)
    return _public(row)


@router.post(
    "/groups/{group}/destinations/{destination_id}/verify", response_model=TeamDestinationPublic
)
async def verify_team_destination(
    destination_id: DestinationId,
    body: TeamDestinationVerify,
    access: TeamSponsor,
    session: SessionDep,
    services: ServicesDep,
) -> TeamDestinationPublic:
    """Enter the code that was sent to the destination: from then on team rules may use it."""
    row = await get_destination(session, access.group, destination_id)
    await verify_code(session, services, row, body.code, access.identity.name)
    return _public(row)


@router.delete("/groups/{group}/destinations/{destination_id}", response_model=None)
async def delete_team_destination(
    destination_id: DestinationId, access: TeamSponsor, session: SessionDep, services: ServicesDep
) -> None:
    """Remove a destination no rule of the group uses (409 naming the rules otherwise)."""
    row = await get_destination(session, access.group, destination_id)
    used_by = await destination_in_use(session, row)
    if used_by:
        raise HTTPException(409, f"Used by the group's rules {used_by}: change them first")
    await session.delete(row)
    await session.commit()
    await announce_group_change(session, services, access.group)

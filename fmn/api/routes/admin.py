"""/admin: every rule and user, enabling and disabling any rule, the dead-letter queues and the
system's status. Members of `oidc.admin_groups` only (403 for others)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Response
from sqlalchemy import select

from fmn.api import health, rule_requests
from fmn.api.deps import AdminUser, AllKinds, ReadSessionDep, RuleId, ServicesDep, SessionDep
from fmn.api.pagination import PageDep, paginate
from fmn.api.schemas import (
    AdminRulePatch,
    DeadLetterPublic,
    Protocol,
    RulePublic,
    SystemStatus,
    UserPublic,
)
from fmn.db import models
from fmn.rules.schema import MAX_NAME_LENGTH
from fmn.rules.store import read_rules
from fmn.sendqueue import deadletters
from fmn.sendqueue.topology import dead_letter_queue
from fmn.sendqueue.workitem import PROTOCOLS
from fmn.transport.base import Broker

router = APIRouter(prefix="/admin", tags=["admin"])

# No control characters: PostgreSQL refuses a NUL in text (a 500 instead of a clear 422).
Text = Annotated[str | None, Query(max_length=MAX_NAME_LENGTH, pattern=r"^[^\x00-\x1f\x7f]*$")]
DeadLetterId = Annotated[str, Path(min_length=1, max_length=255)]


@router.get("/rules", response_model=list[RulePublic])
async def list_rules(
    _admin: AdminUser,
    session: ReadSessionDep,
    page: PageDep,
    response: Response,
    disabled: bool | None = None,
    username: Text = None,
    all_kinds: AllKinds = False,
) -> list[RulePublic]:
    read = await read_rules(
        session,
        username=username or None,
        disabled=disabled,
        fmn3_only=not all_kinds,
        offset=page.offset,
        limit=page.limit,
    )
    page.headers(response, read.total)
    return [RulePublic.of(stored) for stored in read.rules]


@router.get("/users", response_model=list[UserPublic])
async def list_users(
    _admin: AdminUser,
    session: ReadSessionDep,
    page: PageDep,
    response: Response,
    search: Text = None,
) -> list[UserPublic]:
    """Users who have logged in, by name; `search` matches any part of the name."""
    query = select(models.User).order_by(models.User.name)
    if search:
        query = query.where(models.User.name.contains(search, autoescape=True))
    users = await paginate(session, query, page, response)
    return [UserPublic(id=u.id, name=u.name) for u in users]


@router.patch("/rules/{id}", response_model=RulePublic)
async def patch_rule(
    rule_id: RuleId,
    patch: AdminRulePatch,
    _admin: AdminUser,
    session: SessionDep,
    services: ServicesDep,
) -> RulePublic:
    """Enable or disable anyone's rule (announced only when it changed)."""
    rule = await session.scalar(rule_requests.rules_query().where(models.Rule.id == rule_id))
    if rule is None:
        raise HTTPException(404, f"No rule {rule_id}")
    if patch.disabled is not None and rule.disabled != patch.disabled:
        rule.disabled = patch.disabled
        await session.commit()
        services.announcer.announce("update", rule.id, rule.name, rule.user.name)
    return await rule_requests.read_public(session, rule.id)


@router.get("/deadletters", response_model=list[DeadLetterPublic])
async def list_dead_letters(
    _admin: AdminUser,
    services: ServicesDep,
    page: PageDep,
    response: Response,
    protocol: Protocol | None = None,
) -> list[DeadLetterPublic]:
    """Notifications the senders gave up on, oldest first."""
    broker = await services.get_send_broker()
    exchange = services.settings.send_queue.exchange
    protocols = [protocol] if protocol else list(PROTOCOLS)
    total = 0
    for p in protocols:
        total += await broker.queue_size(dead_letter_queue(exchange, p))
    page.headers(response, total)  # (a whole list of too many: the 422, before reading)
    found = await deadletters.list_dead_letters(
        broker, exchange, protocol, limit=page.offset + page.limit
    )
    page.headers(response, max(total, len(found)))
    return [DeadLetterPublic.model_validate(d.as_dict()) for d in page.slice(found)]


Settle = Callable[[Broker, str, str | None, Collection[str]], Awaitable[int]]


async def _settle(
    services: ServicesDep, settle: Settle, letter_id: str, protocol: str | None
) -> None:
    broker = await services.get_send_broker()
    exchange = services.settings.send_queue.exchange
    if not await settle(broker, exchange, protocol, {letter_id}):
        raise HTTPException(404, f"No dead letter {letter_id}")


@router.post("/deadletters/{letter_id}/replay", status_code=204)
async def replay_dead_letter(
    letter_id: DeadLetterId,
    _admin: AdminUser,
    services: ServicesDep,
    protocol: Protocol | None = None,
) -> None:
    """Send it again, with its retries counted afresh."""
    await _settle(services, deadletters.replay_dead_letters, letter_id, protocol)


@router.delete("/deadletters/{letter_id}", status_code=204)
async def discard_dead_letter(
    letter_id: DeadLetterId,
    _admin: AdminUser,
    services: ServicesDep,
    protocol: Protocol | None = None,
) -> None:
    await _settle(services, deadletters.discard_dead_letters, letter_id, protocol)


@router.get("/status", response_model=SystemStatus)
async def system_status(admin: AdminUser, services: ServicesDep) -> SystemStatus:
    return SystemStatus(components=await health.status(services, admin.name))

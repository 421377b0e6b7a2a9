"""One-click unsubscribe (RFC 8058): the signed link in a notification's List-Unsubscribe
header stops one destination of one rule, without a login. GET only tells what a POST would do
(mail scanners follow links); a forged, altered, older-format or expired link changes nothing."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fmn.api.deps import ServicesDep, SessionDep
from fmn.api.schemas import UnsubscribedRule, UnsubscribePublic
from fmn.core.secrets import configured_keys
from fmn.core.signing import ExpiredToken, InvalidToken, Unsubscribe, read_unsubscribe_token
from fmn.db import models
from fmn.rules.store import RULE_LOAD_OPTIONS

router = APIRouter(prefix="/unsubscribe", tags=["unsubscribe"])

Token = Annotated[str, Path(min_length=1, max_length=4096)]


def _read(token: str, services: ServicesDep) -> Unsubscribe:
    api = services.settings.api
    try:
        return read_unsubscribe_token(configured_keys(api)[1], token, api.unsubscribe_link_days)
    except ExpiredToken:
        raise HTTPException(
            410, "This unsubscribe link has expired: log in to change your rules"
        ) from None
    except InvalidToken:
        raise HTTPException(404, "This unsubscribe link is not valid") from None


async def _rule(session: AsyncSession, wanted: Unsubscribe) -> models.Rule:
    rule = await session.scalar(
        select(models.Rule)
        .options(*RULE_LOAD_OPTIONS)
        .join(models.Rule.user)
        .where(models.User.name == wanted.user, models.Rule.id == wanted.rule_id)
    )
    if rule is None:
        raise HTTPException(404, "The rule of this link no longer exists")
    return rule


def _matches(destination: models.Destination, wanted: Unsubscribe) -> bool:
    if destination.protocol != wanted.protocol:
        return False
    if wanted.protocol == "email":
        return destination.address.lower() == wanted.address.lower()
    return destination.address == wanted.address


def _sends_there(rule: models.Rule, wanted: Unsubscribe) -> bool:
    return not rule.disabled and any(
        _matches(d, wanted) for g in rule.generation_rules for d in g.destinations
    )


async def _found(token: Token, session: SessionDep, services: ServicesDep) -> Found:
    wanted = _read(token, services)
    return wanted, await _rule(session, wanted)


Found = tuple[Unsubscribe, models.Rule]
Wanted = Annotated[Found, Depends(_found)]


def _answer(wanted: Unsubscribe, rule: models.Rule, done: bool) -> UnsubscribePublic:
    return UnsubscribePublic(
        user=wanted.user,
        rules=[UnsubscribedRule(id=rule.id, name=rule.name, disabled=rule.disabled)],
        protocol=wanted.protocol,
        address=wanted.address,
        done=done,
    )


def _stop(rule: models.Rule, wanted: Unsubscribe) -> None:
    """Take the destination out of the rule. Where it is the rule's only destination, the rule
    is disabled instead: a rule needs a destination, and disabling keeps it for later."""
    others = [d for g in rule.generation_rules for d in g.destinations if not _matches(d, wanted)]
    if not others:
        rule.disabled = True
        return
    for generation_rule in list(rule.generation_rules):
        generation_rule.destinations = [
            d for d in generation_rule.destinations if not _matches(d, wanted)
        ]
        if not generation_rule.destinations:
            rule.generation_rules.remove(generation_rule)


@router.get("/{token}", response_model=UnsubscribePublic)
async def what_unsubscribe_does(found: Wanted) -> UnsubscribePublic:
    wanted, rule = found
    return _answer(wanted, rule, done=not _sends_there(rule, wanted))


@router.post("/{token}", response_model=UnsubscribePublic)
async def unsubscribe(
    found: Wanted, session: SessionDep, services: ServicesDep
) -> UnsubscribePublic:
    """Stop this destination of this rule (the body, "List-Unsubscribe=One-Click", is not
    needed)."""
    wanted, rule = found
    if _sends_there(rule, wanted):
        _stop(rule, wanted)
        await session.commit()
        services.announcer.announce("update", rule.id, rule.name, wanted.user)
    return _answer(wanted, rule, done=True)

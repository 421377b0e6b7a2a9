"""One-click unsubscribe (RFC 8058): the signed link in a notification's List-Unsubscribe
header disables the rules it names, without a login. GET tells what a POST would do."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path
from sqlalchemy import select

from fmn.api.deps import ServicesDep, SessionDep
from fmn.api.schemas import UnsubscribedRule, UnsubscribePublic
from fmn.core.signing import InvalidToken, Unsubscribe, read_unsubscribe_token
from fmn.db import models

router = APIRouter(prefix="/unsubscribe", tags=["unsubscribe"])

Token = Annotated[str, Path(min_length=1, max_length=4096)]


async def _wanted(
    token: Token, session: SessionDep, services: ServicesDep
) -> tuple[Unsubscribe, list[models.Rule]]:
    """What the token asks for, and the rules it names that still exist."""
    try:
        wanted = read_unsubscribe_token(services.settings.api.secret_key, token)
    except InvalidToken:
        raise HTTPException(404, "This unsubscribe link is not valid") from None
    rules = list(
        await session.scalars(
            select(models.Rule)
            .join(models.Rule.user)
            .where(models.User.name == wanted.user, models.Rule.id.in_(wanted.rule_ids))
            .order_by(models.Rule.id)
        )
    )
    if not rules:
        raise HTTPException(404, "The rules of this link no longer exist")
    return wanted, rules


Wanted = Annotated[tuple[Unsubscribe, list[models.Rule]], Depends(_wanted)]


def _answer(wanted: Unsubscribe, rules: list[models.Rule], done: bool) -> UnsubscribePublic:
    return UnsubscribePublic(
        user=wanted.user,
        rules=[UnsubscribedRule(id=r.id, name=r.name, disabled=r.disabled) for r in rules],
        done=done,
    )


@router.get("/{token}", response_model=UnsubscribePublic)
async def what_unsubscribe_does(found: Wanted) -> UnsubscribePublic:
    wanted, rules = found
    return _answer(wanted, rules, done=all(r.disabled for r in rules))


@router.post("/{token}", response_model=UnsubscribePublic)
async def unsubscribe(
    found: Wanted, session: SessionDep, services: ServicesDep
) -> UnsubscribePublic:
    """Disable the rules (the body, "List-Unsubscribe=One-Click", is not needed)."""
    wanted, rules = found
    changed = [r for r in rules if not r.disabled]
    for rule in changed:
        rule.disabled = True
    if changed:
        await session.commit()
        for rule in changed:
            services.announcer.announce("update", rule.id, rule.name, wanted.user)
    return _answer(wanted, rules, done=True)

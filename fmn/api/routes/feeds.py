"""Private Atom feeds at URLs with a secret token, for feed readers that cannot log in: the
inbox and one per rule. The user reads their feed URLs and replaces the token (the old URLs
then answer 404)."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from email.utils import format_datetime, parsedate_to_datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fmn.api.deps import Owner, ReadSessionDep, RuleId, SessionDep, SettingsDep, Username
from fmn.api.routes.inbox import user_id_or_404
from fmn.core.settings import Settings
from fmn.db import models
from fmn.inbox import feeds, store

router = APIRouter(tags=["feeds"])
FEED_SIZE = 50
TOKEN_BYTES = 32
FeedToken = Annotated[str, Path(min_length=20, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]


class RuleFeed(BaseModel):
    id: int
    name: str
    url: str


class FeedLinks(BaseModel):
    inbox: str
    rules: list[RuleFeed]


def _base(settings: Settings, token: str) -> str:
    return f"{settings.public_url.rstrip('/')}/api/v1/feeds/{token}"


async def _links(session: AsyncSession, settings: Settings, user_id: int, token: str) -> FeedLinks:
    rules = await session.execute(
        select(models.Rule.id, models.Rule.name)
        .where(models.Rule.user_id == user_id)
        .order_by(models.Rule.id)
    )
    base = _base(settings, token)
    return FeedLinks(
        inbox=f"{base}/inbox.atom",
        rules=[RuleFeed(id=i, name=name or "", url=f"{base}/rules/{i}.atom") for i, name in rules],
    )


async def _new_token(session: AsyncSession, user_id: int) -> str:
    token = secrets.token_urlsafe(TOKEN_BYTES)
    row = await session.get(models.FeedToken, user_id)
    if row is None:
        session.add(
            models.FeedToken(user_id=user_id, token=token, created_at=dt.datetime.now(dt.UTC))
        )
    else:
        row.token, row.created_at = token, dt.datetime.now(dt.UTC)
    await session.commit()
    return token


@router.get("/users/{username}/feeds", response_model=FeedLinks)
async def get_feeds(
    username: Username, _owner: Owner, session: SessionDep, settings: SettingsDep
) -> FeedLinks:
    """The user's feed URLs (their secret made on first ask)."""
    user_id = await user_id_or_404(session, username)
    row = await session.get(models.FeedToken, user_id)
    token = row.token if row is not None else await _new_token(session, user_id)
    return await _links(session, settings, user_id, token)


@router.post("/users/{username}/feeds/regenerate", response_model=FeedLinks)
async def regenerate_feeds(
    username: Username, _owner: Owner, session: SessionDep, settings: SettingsDep
) -> FeedLinks:
    """A new secret: the feed URLs change and the old ones answer 404."""
    user_id = await user_id_or_404(session, username)
    token = await _new_token(session, user_id)
    return await _links(session, settings, user_id, token)


async def _owner_of(session: AsyncSession, token: str) -> models.User:
    user = await session.scalar(
        select(models.User).join(models.FeedToken).where(models.FeedToken.token == token)
    )
    if user is None:
        raise HTTPException(404, "No such feed")
    return user


@dataclass(frozen=True)
class Feed:
    kind: str  # "inbox", "rules/<id>": the path after the token, without ".atom"
    title: str
    filters: store.Filters


async def _answer(
    session: AsyncSession,
    settings: Settings,
    user: models.User,
    token: str,
    feed: Feed,
    asked: Conditional,
) -> Response:
    entries = await store.entries(session, user.id, feed.filters, limit=FEED_SIZE)
    total = await store.count(session, user.id, feed.filters)
    newest = entries[0] if entries else None
    tag = feeds.etag(feed.kind, newest.id if newest else 0, total)
    modified = (newest.created_at if newest else dt.datetime(2000, 1, 1, tzinfo=dt.UTC)).replace(
        microsecond=0
    )
    headers = {
        "ETag": tag,
        "Last-Modified": format_datetime(modified.astimezone(dt.UTC), usegmt=True),
        "Cache-Control": "private, no-cache",
    }
    if _not_modified(tag, modified, asked):
        return Response(status_code=304, headers=headers)
    public = settings.public_url.rstrip("/")
    body = feeds.render(
        feed_id=f"{public}/feeds/{user.name}/{feed.kind}",
        title=feed.title,
        self_url=f"{_base(settings, token)}/{feed.kind}.atom",
        inbox_url=f"{public}/inbox",
        entries=entries,
        updated=modified,
    )
    return Response(body, media_type=feeds.MEDIA_TYPE, headers=headers)


def _not_modified(tag: str, modified: dt.datetime, asked: Conditional) -> bool:
    """RFC 9110 §13.1: If-None-Match decides when sent; else If-Modified-Since."""
    if_none_match, if_modified_since = asked.if_none_match, asked.if_modified_since
    if if_none_match is not None:
        sent = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        return "*" in sent or tag.removeprefix("W/") in sent
    if if_modified_since is not None:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
        if since.tzinfo is None:
            return False
        return modified <= since
    return False


@dataclass(frozen=True)
class Conditional:
    """A conditional GET's validators, as the reader sent them."""

    if_none_match: str | None
    if_modified_since: str | None


async def _conditional(
    if_none_match: Annotated[str | None, Header(max_length=1000)] = None,
    if_modified_since: Annotated[str | None, Header(max_length=100)] = None,
) -> Conditional:
    return Conditional(if_none_match, if_modified_since)


ConditionalDep = Annotated[Conditional, Depends(_conditional)]


@router.get("/feeds/{feed_token}/inbox.atom", response_class=Response)
async def inbox_feed(
    feed_token: FeedToken, session: ReadSessionDep, settings: SettingsDep, asked: ConditionalDep
) -> Response:
    """The inbox's latest entries as Atom (no login: the token is the secret)."""
    user = await _owner_of(session, feed_token)
    feed = Feed("inbox", f"Notifications of {user.name}", store.Filters())
    return await _answer(session, settings, user, feed_token, feed, asked)


@router.get("/feeds/{feed_token}/rules/{id}.atom", response_class=Response)
async def rule_feed(
    feed_token: FeedToken,
    rule_id: RuleId,
    session: ReadSessionDep,
    settings: SettingsDep,
    asked: ConditionalDep,
) -> Response:
    """One rule's latest entries as Atom."""
    user = await _owner_of(session, feed_token)
    rule = await session.scalar(
        select(models.Rule).where(models.Rule.id == rule_id, models.Rule.user_id == user.id)
    )
    if rule is None:
        raise HTTPException(404, "No such feed")
    title = f"Notifications of {user.name}: {rule.name or f'rule {rule_id}'}"
    feed = Feed(f"rules/{rule_id}", title, store.Filters(rule_id=rule_id))
    return await _answer(session, settings, user, feed_token, feed, asked)

"""Private Atom feeds at URLs with a secret token, for feed readers that cannot log in: the
inbox and one per rule. The user reads their feed URLs and replaces the token (the old URLs
then answer 404)."""

from __future__ import annotations

import datetime as dt
import secrets
from email.utils import format_datetime, parsedate_to_datetime
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Path, Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fmn.api.deps import MAX_ID, Owner, ReadSessionDep, SessionDep, SettingsDep, Username
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


async def _feed(
    session: AsyncSession,
    settings: Settings,
    user: models.User,
    filters: store.Filters,
    *,
    kind: str,
    title: str,
    self_url: str,
    if_none_match: str | None,
    if_modified_since: str | None,
) -> Response:
    entries = await store.entries(session, user.id, filters, limit=FEED_SIZE)
    total = await store.count(session, user.id, filters)
    newest = entries[0] if entries else None
    tag = feeds.etag(kind, newest.id if newest else 0, total)
    modified = (newest.created_at if newest else dt.datetime(2000, 1, 1, tzinfo=dt.UTC)).replace(
        microsecond=0
    )
    headers = {
        "ETag": tag,
        "Last-Modified": format_datetime(modified.astimezone(dt.UTC), usegmt=True),
        "Cache-Control": "private, no-cache",
    }
    if _not_modified(tag, modified, if_none_match, if_modified_since):
        return Response(status_code=304, headers=headers)
    inbox_url = settings.public_url.rstrip("/") + "/inbox"
    body = feeds.render(
        feed_id=f"{settings.public_url.rstrip('/')}/feeds/{user.name}/{kind}",
        title=title,
        self_url=self_url,
        inbox_url=inbox_url,
        entries=entries,
        updated=modified,
    )
    return Response(body, media_type=feeds.MEDIA_TYPE, headers=headers)


def _not_modified(
    tag: str, modified: dt.datetime, if_none_match: str | None, if_modified_since: str | None
) -> bool:
    """RFC 9110 §13.1: If-None-Match decides when sent; else If-Modified-Since."""
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


IfNoneMatch = Annotated[str | None, Header(max_length=1000)]
IfModifiedSince = Annotated[str | None, Header(max_length=100)]


@router.get("/feeds/{feed_token}/inbox.atom", response_class=Response)
async def inbox_feed(
    feed_token: FeedToken,
    session: ReadSessionDep,
    settings: SettingsDep,
    if_none_match: IfNoneMatch = None,
    if_modified_since: IfModifiedSince = None,
) -> Response:
    """The inbox's latest entries as Atom (no login: the token is the secret)."""
    user = await _owner_of(session, feed_token)
    return await _feed(
        session,
        settings,
        user,
        store.Filters(),
        kind="inbox",
        title=f"Notifications of {user.name}",
        self_url=f"{_base(settings, feed_token)}/inbox.atom",
        if_none_match=if_none_match,
        if_modified_since=if_modified_since,
    )


@router.get("/feeds/{feed_token}/rules/{rule_id}.atom", response_class=Response)
async def rule_feed(
    feed_token: FeedToken,
    rule_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    session: ReadSessionDep,
    settings: SettingsDep,
    if_none_match: IfNoneMatch = None,
    if_modified_since: IfModifiedSince = None,
) -> Response:
    """One rule's latest entries as Atom."""
    user = await _owner_of(session, feed_token)
    rule = await session.scalar(
        select(models.Rule).where(models.Rule.id == rule_id, models.Rule.user_id == user.id)
    )
    if rule is None:
        raise HTTPException(404, "No such feed")
    return await _feed(
        session,
        settings,
        user,
        store.Filters(rule_id=rule_id),
        kind=f"rules/{rule_id}",
        title=f"Notifications of {user.name}: {rule.name or f'rule {rule_id}'}",
        self_url=f"{_base(settings, feed_token)}/rules/{rule_id}.atom",
        if_none_match=if_none_match,
        if_modified_since=if_modified_since,
    )

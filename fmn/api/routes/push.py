"""Web Push: the server's public VAPID key (no login) and a user's push subscriptions, one per
browser (device). Only the user's own."""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Path, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import delete, select

from fmn.api.deps import MAX_ID, Owner, ReadSessionDep, SessionDep, SettingsDep, Username
from fmn.api.routes.inbox import user_id_or_404
from fmn.db import models
from fmn.inbox import store
from fmn.inbox.public_hosts import RefusedHost, check_host
from fmn.inbox.vapid import b64url_decode, load_key, public_key

router = APIRouter(tags=["push"])
_B64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class VapidKey(BaseModel):
    public_key: str = Field(description="base64url of the uncompressed P-256 point")


class SubscriptionKeys(BaseModel):
    p256dh: str = Field(max_length=200, description="The browser's P-256 public key, base64url")
    auth: str = Field(max_length=100, description="The 16-byte authentication secret, base64url")

    @field_validator("p256dh")
    @classmethod
    def _point(cls, value: str) -> str:
        raw = _decoded(value)
        if len(raw) != 65 or raw[0] != 4:
            raise ValueError("not an uncompressed P-256 public key (65 bytes, 0x04 first)")
        return value

    @field_validator("auth")
    @classmethod
    def _secret(cls, value: str) -> str:
        if len(_decoded(value)) != 16:
            raise ValueError("not a 16-byte authentication secret")
        return value


def _decoded(value: str) -> bytes:
    if not _B64URL.fullmatch(value):
        raise ValueError("not base64url")
    try:
        return b64url_decode(value.rstrip("="))
    except ValueError:
        raise ValueError("not base64url") from None


class SubscriptionCreate(BaseModel):
    """The browser's PushSubscription.toJSON(), and a name for the device."""

    model_config = ConfigDict(extra="ignore")  # expirationTime and what browsers add
    endpoint: str = Field(min_length=1, max_length=2048)
    keys: SubscriptionKeys
    device: str = Field(min_length=1, max_length=255)

    @field_validator("device")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if _CONTROL.search(value):
            raise ValueError("the device name contains control characters")
        return value


class SubscriptionPublic(BaseModel):
    id: int
    endpoint: str
    device: str
    created_at: dt.datetime


def _public(row: models.PushSubscription) -> SubscriptionPublic:
    created = row.created_at
    return SubscriptionPublic(
        id=row.id,
        endpoint=row.endpoint,
        device=row.device,
        created_at=created if created.tzinfo else created.replace(tzinfo=dt.UTC),
    )


@functools.lru_cache(maxsize=4)
def _public_key(private_key: str) -> str:
    return public_key(load_key(private_key))


@router.get("/push/vapid-public-key", response_model=VapidKey)
async def vapid_public_key(settings: SettingsDep) -> VapidKey:
    """The key browsers subscribe with (applicationServerKey); 404 without Web Push."""
    if not settings.web.vapid_private_key:
        raise HTTPException(404, "Web Push is not configured")
    return VapidKey(public_key=_public_key(settings.web.vapid_private_key))


SUBSCRIPTIONS = "/users/{username}/push-subscriptions"


@router.get(SUBSCRIPTIONS, response_model=list[SubscriptionPublic])
async def list_subscriptions(
    username: Username, _owner: Owner, session: ReadSessionDep
) -> list[SubscriptionPublic]:
    rows = await session.scalars(
        select(models.PushSubscription)
        .join(models.User)
        .where(models.User.name == username)
        .order_by(models.PushSubscription.id)
    )
    return [_public(row) for row in rows]


@router.post(SUBSCRIPTIONS, response_model=SubscriptionPublic, status_code=201)
async def subscribe(
    username: Username,
    body: SubscriptionCreate,
    _owner: Owner,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
) -> SubscriptionPublic:
    """Keep a browser's subscription (201); the same endpoint again: the one kept (200)."""
    url = urlsplit(body.endpoint)
    schemes = ("https", "http") if settings.web.push_allow_http else ("https",)
    if url.scheme not in schemes or not url.hostname:
        raise _invalid_endpoint(body.endpoint, schemes)
    if not settings.web.push_allow_private_hosts:
        try:
            await check_host(url.hostname, url.port or (443 if url.scheme == "https" else 80))
        except RefusedHost as exc:
            raise _endpoint_error(
                body.endpoint, "url_host", f"the endpoint must be on a public host: {exc}"
            ) from None
    user_id = await user_id_or_404(session, username)
    row = await session.scalar(
        select(models.PushSubscription).where(models.PushSubscription.endpoint == body.endpoint)
    )
    if row is not None and row.user_id == user_id:
        response.status_code = 200
        return _public(row)
    if row is not None:
        # The browser now belongs to someone else's log-in: the first user's pushes stop.
        await session.delete(row)
        await session.flush()
    row = models.PushSubscription(
        user_id=user_id,
        endpoint=body.endpoint,
        p256dh=body.keys.p256dh,
        auth=body.keys.auth,
        device=body.device,
        created_at=dt.datetime.now(dt.UTC),
    )
    session.add(row)
    await session.commit()
    return _public(row)


def _invalid_endpoint(endpoint: str, schemes: tuple[str, ...]) -> RequestValidationError:
    return _endpoint_error(
        endpoint, "url_scheme", f"the endpoint must be an {' or '.join(schemes)} URL"
    )


def _endpoint_error(endpoint: str, kind: str, message: str) -> RequestValidationError:
    return RequestValidationError(
        [{"type": kind, "loc": ("body", "endpoint"), "msg": message, "input": endpoint}]
    )


@router.delete(f"{SUBSCRIPTIONS}/{{subscription_id}}", status_code=204)
async def unsubscribe(
    username: Username,
    subscription_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    _owner: Owner,
    session: SessionDep,
) -> Response:
    user_id = await store.user_id_of(session, username)
    result = await session.execute(
        delete(models.PushSubscription).where(
            models.PushSubscription.id == subscription_id,
            models.PushSubscription.user_id == user_id,
        )
    )
    if not getattr(result, "rowcount", 0):
        raise HTTPException(404, f"No push subscription {subscription_id}")
    await session.commit()
    return Response(status_code=204)

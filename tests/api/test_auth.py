"""Bearer tokens from a real OIDC provider: introspection, userinfo, caching, first login."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fmn.core.settings import Settings
from fmn.db import models
from tests.api.conftest import ADMIN_GROUP, ALICE_EMAIL
from tests.harness.oidc import Provider


async def test_me_creates_the_user_with_the_default_rule(
    client: httpx.AsyncClient, auth: Any, session: AsyncSession
) -> None:
    response = await client.get("/api/v1/users/me", headers=auth("alice"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "alice" and body["is_admin"] is False
    user = await session.scalar(select(models.User).where(models.User.name == "alice"))
    assert user is not None and user.id == body["id"]
    rules = (await client.get("/api/v1/users/alice/rules", headers=auth("alice"))).json()
    assert [(r["name"], r["tracking_rule"]["name"]) for r in rules] == [
        ("My Events", "related-events")
    ]
    assert rules[0]["generation_rules"][0]["destinations"] == [
        {"protocol": "email", "address": ALICE_EMAIL}
    ]


async def test_no_token_wrong_token_and_bad_scheme_are_401(client: httpx.AsyncClient) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic YWxpY2U6cHc="},
        {"Authorization": "Bearer " + "x" * 9000},
    ):
        response = await client.get("/api/v1/users/me", headers=headers)
        assert response.status_code == 401, (headers, response.text)
        assert response.headers["www-authenticate"] == "Bearer"


async def test_admins_are_members_of_the_admin_groups(client: httpx.AsyncClient, auth: Any) -> None:
    assert (await client.get("/api/v1/users/me", headers=auth("root"))).json()["is_admin"]
    assert not (await client.get("/api/v1/users/me", headers=auth("bob"))).json()["is_admin"]


async def test_identity_cached_in_redis_until_the_token_expires(
    client: httpx.AsyncClient, auth: Any, tokens: dict[str, str], redis_client: aioredis.Redis
) -> None:
    assert (await client.get("/api/v1/users/me", headers=auth("bob"))).status_code == 200
    key = "fmn:api:identity:v1:" + hashlib.sha256(tokens["bob"].encode()).hexdigest()
    keys = [k.decode() for k in await redis_client.keys("*")]
    assert any(k.endswith(key) for k in keys), keys
    ttl = max([await redis_client.ttl(k) for k in keys if k.endswith(key)])
    assert 3000 < ttl <= 3600  # the provider's tokens live an hour


async def test_an_expired_token_is_refused(client: httpx.AsyncClient, oidc: Provider) -> None:
    token = oidc.token("bob", expires_in="3")
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/users/me", headers=headers)).status_code == 200
    await asyncio.sleep(3.2)
    response = await client.get("/api/v1/users/me", headers=headers)
    assert response.status_code == 401
    assert "expired" in response.json()["detail"].lower()


@pytest.mark.parametrize("mode", ["introspection", "userinfo", "both"])
async def test_every_token_check_mode_works(
    make_app: Any, api_settings: Settings, oidc: Provider, mode: str
) -> None:
    settings = api_settings.model_copy(
        update={"oidc": api_settings.oidc.model_copy(update={"token_check": mode})}
    )
    app = await make_app(settings)
    token = oidc.token("root")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        me = await http.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200, me.text
        assert me.json()["name"] == "root" and me.json()["is_admin"] is True
        bad = await http.get("/api/v1/users/me", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401


async def test_a_revoked_token_is_refused_when_not_cached(
    client: httpx.AsyncClient, oidc: Provider
) -> None:
    token = oidc.token("bob")
    oidc.revoke(token)
    response = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


async def test_provider_down_is_503_not_500(make_app: Any, api_settings: Settings) -> None:
    settings = api_settings.model_copy(
        update={"oidc": api_settings.oidc.model_copy(update={"provider_url": "http://127.0.0.1:9"})}
    )
    app = await make_app(settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        response = await http.get("/api/v1/users/me", headers={"Authorization": "Bearer abc"})
    assert response.status_code == 503


async def test_first_login_without_email_or_directory_entry_has_no_default_rule(
    client: httpx.AsyncClient, auth: Any, session: AsyncSession
) -> None:
    for name in ("noemail", "ghost"):
        assert (await client.get("/api/v1/users/me", headers=auth(name))).status_code == 200
        user = await session.scalar(select(models.User).where(models.User.name == name))
        assert user is not None
        rules = await session.scalars(select(models.Rule).where(models.Rule.user_id == user.id))
        assert list(rules) == []


async def test_first_login_by_any_endpoint_creates_the_user_once(
    client: httpx.AsyncClient, auth: Any, session: AsyncSession
) -> None:
    for _ in range(3):
        response = await client.get("/api/v1/users/newbie/settings", headers=auth("newbie"))
        assert response.status_code == 200
    users = list(await session.scalars(select(models.User).where(models.User.name == "newbie")))
    assert len(users) == 1
    rules = list(
        await session.scalars(select(models.Rule).where(models.Rule.user_id == users[0].id))
    )
    assert len(rules) == 1 and rules[0].name == "My Events"


def test_admin_group_is_configured() -> None:
    assert ADMIN_GROUP != "sysadmin-main"

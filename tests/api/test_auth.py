"""Bearer tokens from a real OIDC provider: introspection, userinfo, caching, first login."""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fmn.core.settings import Settings
from fmn.db import models
from tests.api.conftest import ADMIN_GROUP, ALICE_EMAIL
from tests.harness.oidc import CLIENT_ID, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET, Provider


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
        {"protocol": "email", "address": ALICE_EMAIL},
        {"protocol": "web", "address": "alice"},
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


def _cache_keys(token: str) -> str:
    return "fmn:api:identity:v2:" + hashlib.sha256(token.encode()).hexdigest()


async def _cached(redis_client: aioredis.Redis, token: str) -> tuple[int, bytes | None]:
    """(seconds left, value as stored) of the token's entry in the shared cache."""
    key = _cache_keys(token)
    for found in await redis_client.keys("*"):
        if found.decode().endswith(key):
            value = await redis_client.get(found)
            return await redis_client.ttl(found), value
    return -2, None


def _with_oidc(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(update={"oidc": settings.oidc.model_copy(update=changes)})


async def _me(app: Any, token: str) -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        return await http.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})


async def test_identity_cached_for_identity_ttl_not_until_the_token_expires(
    client: httpx.AsyncClient, auth: Any, tokens: dict[str, str], redis_client: aioredis.Redis
) -> None:
    assert (await client.get("/api/v1/users/me", headers=auth("bob"))).status_code == 200
    ttl, value = await _cached(redis_client, tokens["bob"])
    assert value is not None and b'"bob"' in value
    assert 0 < ttl <= 60  # the default identity_ttl; the provider's tokens live an hour


@pytest.mark.parametrize("mode", ["introspection", "userinfo", "both"])
async def test_a_revoked_token_is_refused_within_identity_ttl(
    make_app: Any, api_settings: Settings, oidc: Provider, mode: str
) -> None:
    app = await make_app(_with_oidc(api_settings, token_check=mode, identity_ttl=1))
    token = oidc.token("bob")
    assert (await _me(app, token)).status_code == 200
    oidc.revoke(token)
    await asyncio.sleep(1.1)
    response = await _me(app, token)
    assert response.status_code == 401, response.text
    assert response.json()["detail"]


async def test_an_inactive_introspection_answer_ends_the_identity_for_every_process(
    make_app: Any, api_settings: Settings, oidc: Provider, redis_client: aioredis.Redis
) -> None:
    settings = _with_oidc(api_settings, token_check="introspection", identity_ttl=1)
    first = await make_app(settings)
    token = oidc.token("bob")
    assert (await _me(first, token)).status_code == 200
    oidc.revoke(token)
    await asyncio.sleep(1.1)
    assert (await _me(first, token)).status_code == 401  # introspection said active: false
    _ttl, value = await _cached(redis_client, token)
    assert value is not None and b"refused" in value and b"bob" not in value
    # Another process, whose provider is unreachable, refuses it too: it never asks.
    other = await make_app(_with_oidc(settings, provider_url="http://127.0.0.1:9"))
    response = await _me(other, token)
    assert response.status_code == 401, response.text


@pytest.mark.parametrize("mode", ["introspection", "both"])
async def test_a_token_issued_to_another_client_is_refused(
    make_app: Any, api_settings: Settings, oidc: Provider, mode: str
) -> None:
    app = await make_app(_with_oidc(api_settings, token_check=mode))
    other = oidc.token("root", client=(OTHER_CLIENT_ID, OTHER_CLIENT_SECRET))
    response = await _me(app, other)
    assert response.status_code == 401, response.text
    assert "not issued to this application" in response.json()["detail"]
    assert (await _me(app, oidc.token("root"))).status_code == 200


async def test_allowed_clients_admit_another_application(
    make_app: Any, api_settings: Settings, oidc: Provider
) -> None:
    app = await make_app(
        _with_oidc(
            api_settings,
            token_check="introspection",
            allowed_clients=[CLIENT_ID, OTHER_CLIENT_ID],
        )
    )
    other = oidc.token("root", client=(OTHER_CLIENT_ID, OTHER_CLIENT_SECRET))
    assert (await _me(app, other)).status_code == 200


@pytest.mark.parametrize(
    "header",
    [
        b"Bearer abc\xe9def",  # a non-ASCII byte
        "Bearer caf\u00e9".encode(),
        b"Bearer ",
        b"Bearer",
        b"",
        b"Token abcdef",
        b"Bearer abc def",
        b"Bearer abc\tdef",
        b"Bearer a=b",
    ],
)
async def test_a_malformed_authorization_header_is_a_json_401(
    client: httpx.AsyncClient, header: bytes
) -> None:
    response = await client.get("/api/v1/users/me", headers=[(b"authorization", header)])
    assert response.status_code == 401, response.text
    assert response.json()["detail"]
    assert response.headers["www-authenticate"] == "Bearer"


async def test_unknown_tokens_are_remembered_and_limited_per_address(
    make_app: Any, api_settings: Settings
) -> None:
    app = await make_app(_with_oidc(api_settings, token_checks_per_minute=3))
    if time.time() % 60 > 50:  # the checks below must fall in one one-minute window
        await asyncio.sleep(60.5 - time.time() % 60)
    # One unknown token, again and again: the provider is asked once, the answer remembered.
    for _ in range(6):
        response = await _me(app, "unknown-token")
        assert response.status_code == 401, response.text
    # New unknown tokens from the same address: two more checks, then 429.
    answers = [await _me(app, f"guess-{i}") for i in range(4)]
    assert [r.status_code for r in answers] == [401, 401, 429, 429]
    assert int(answers[-1].headers["retry-after"]) >= 1
    assert "try again" in answers[-1].json()["detail"]


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


async def test_first_login_without_email_has_the_inbox_only_and_without_entry_no_rule(
    client: httpx.AsyncClient, auth: Any, session: AsyncSession
) -> None:
    for name, expected in (("noemail", [[("web", "noemail")]]), ("ghost", [])):
        assert (await client.get("/api/v1/users/me", headers=auth(name))).status_code == 200
        rules = (await client.get(f"/api/v1/users/{name}/rules", headers=auth(name))).json()
        found = [
            [(d["protocol"], d["address"]) for d in r["generation_rules"][0]["destinations"]]
            for r in rules
        ]
        assert found == expected, name


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

"""Lists without paging parameters are answered whole, as FMN 3 answers them (its clients send
none); a list past `api.max_list_size` is refused with a 422 saying so, never cut short."""

from __future__ import annotations

import json
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from fmn.core.settings import Settings
from fmn.directory.local import DirectoryData, LocalDirectory
from tests.api.conftest import DIRECTORY
from tests.factories import make_rule, make_user

API = "/api/v1/users/alice/rules"


def client_of(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_a_user_with_56_rules_sees_56_without_parameters(
    client: httpx.AsyncClient, auth: Any, session: AsyncSession
) -> None:
    alice = await make_user(session, "alice")
    for i in range(56):
        await make_rule(session, alice, name=f"r{i:02}")
    await session.commit()
    for _ in range(2):  # read, then from the page cache
        listed = await client.get(API, headers=auth("alice"))
        assert listed.status_code == 200, listed.text
        assert [r["name"] for r in listed.json()] == [f"r{i:02}" for i in range(56)]
        assert listed.headers["x-total-count"] == "56"
        assert "x-page" not in listed.headers
    admin = await client.get("/api/v1/admin/rules?username=alice", headers=auth("root"))
    assert len(admin.json()) == 56 and admin.headers["x-total-count"] == "56"
    # Paging parameters still page (fmn's web app sends them).
    second = await client.get(f"{API}?page=2", headers=auth("alice"))
    assert [r["name"] for r in second.json()] == [f"r{i:02}" for i in range(50, 56)]
    assert second.headers["x-page"] == "2" and second.headers["x-page-size"] == "50"


async def test_an_artifact_search_returns_all_90_of_90(make_app: Any, auth: Any) -> None:
    data = json.loads(json.dumps(DIRECTORY))
    for i in range(90):
        data["projects"][f"rpms/many-{i:02}"] = {"access_users": {"owner": ["bob"]}}
    directory = LocalDirectory(DirectoryData.model_validate(data))
    http = client_of(await make_app(directory=directory))
    found = await http.get("/api/v1/artifacts?names=many-*", headers=auth("bob"))
    assert found.status_code == 200, found.text
    assert [a["name"] for a in found.json()] == [f"many-{i:02}" for i in range(90)]
    assert found.headers["x-total-count"] == "90"


async def test_past_the_hard_limit_a_whole_list_is_refused_not_cut(
    make_app: Any, api_settings: Settings, auth: Any, session: AsyncSession
) -> None:
    settings = api_settings.model_copy(
        update={"api": api_settings.api.model_copy(update={"max_list_size": 5})}
    )
    http = client_of(await make_app(settings))
    for i in range(6):
        await make_user(session, f"user{i}")
    await session.commit()
    refused = await http.get("/api/v1/admin/users?search=user", headers=auth("root"))
    assert refused.status_code == 422
    detail = refused.json()["detail"][0]
    assert detail["loc"] == ["query", "page_size"]
    assert detail["msg"].startswith("6 items, more than the 5 a list without paging parameters")
    paged = await http.get("/api/v1/admin/users?search=user&page_size=5", headers=auth("root"))
    assert [u["name"] for u in paged.json()] == [f"user{i}" for i in range(5)]
    assert paged.headers["x-total-count"] == "6"
    # Within the limit, whole.
    small = await http.get("/api/v1/admin/users?search=user5", headers=auth("root"))
    assert [u["name"] for u in small.json()] == ["user5"]

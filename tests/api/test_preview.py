"""Rule previews over the archive, through the consumer's rule engine."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from fmn.core.settings import Settings
from fmn.directory.factory import make_remote_directory
from fmn.directory.local import DirectoryData, LocalDirectory
from tests.api.archive import archive, koji_build
from tests.api.conftest import ALICE_EMAIL, DIRECTORY, rule_body
from tests.directory.conftest import client_settings
from tests.harness.directory_server import RunningServer

URL = "/api/v1/users/alice/rules/preview"
NOW = dt.datetime.now(dt.UTC)


def ago(days: float) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


@pytest.fixture
async def archived(session: AsyncSession) -> None:
    await archive(
        session,
        [
            koji_build("alice", "python-foo", ago(0.01)),
            koji_build("alice", "python-foo", ago(1.01)),
            koji_build("alice", "unowned", ago(1.02)),
            koji_build("bob", "bar", ago(0.02)),
            koji_build("bob", "python-foo", ago(2.01)),
            koji_build("carol", "other", ago(0.03)),
            koji_build("alice", "python-foo", ago(9)),  # outside a 7-day window
        ],
    )


def preview(tracking: dict[str, Any], days: int = 7, **filters: Any) -> dict[str, Any]:
    body = rule_body(tracking=tracking)
    body["generation_rules"][0]["filters"] = filters
    return {"rule": body, "days": days}


async def test_related_events(client: httpx.AsyncClient, auth: Any, archived: None) -> None:
    response = await client.post(
        URL, headers=auth("alice"), json=preview({"name": "related-events", "params": None})
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["complete"] is True
    # Only alice's messages of the window were read: the key index did its job.
    assert result["total"] == 3 and result["scanned"] == 3
    per_day = [d["count"] for d in result["per_day"]]
    assert len(per_day) == 7 and per_day[-2:] == [2, 1]
    assert result["per_day"][-1]["date"] == NOW.date().isoformat()
    first = result["notifications"][0]
    assert first["destinations"] == [{"protocol": "email", "address": ALICE_EMAIL}]
    assert first["message"]["topic"].endswith("buildsys.build.state.change")
    assert first["message"]["app_name"] == "Koji"
    assert "python-foo" in first["message"]["summary"]
    assert first["message"]["url"]
    sent = [n["message"]["sent_at"] for n in result["notifications"]]
    assert sent == sorted(sent, reverse=True)


@pytest.mark.parametrize(
    ("tracking", "packages"),
    [
        ({"name": "artifacts-owned", "params": ["alice"]}, {"python-foo"}),
        ({"name": "artifacts-group-owned", "params": ["python-sig"]}, {"bar"}),
        (
            {"name": "artifacts-followed", "params": [{"name": "other", "type": "rpms"}]},
            {"other"},
        ),
        ({"name": "users-followed", "params": ["carol"]}, set()),  # koji builds have no agent
    ],
)
async def test_tracking_rules(
    client: httpx.AsyncClient,
    auth: Any,
    archived: None,
    tracking: dict[str, Any],
    packages: set[str],
) -> None:
    response = await client.post(
        URL, headers=auth("alice"), json=preview(tracking, my_actions=True)
    )
    assert response.status_code == 200, response.text
    summaries = [n["message"]["summary"] for n in response.json()["notifications"]]
    found = {p for p in ("python-foo", "bar", "other", "unowned") for s in summaries if p in s}
    assert found == packages


async def test_filters_apply(client: httpx.AsyncClient, auth: Any, archived: None) -> None:
    tracking = {"name": "related-events", "params": None}
    only_bodhi = await client.post(
        URL, headers=auth("alice"), json=preview(tracking, applications=["bodhi"])
    )
    assert only_bodhi.json()["total"] == 0
    assert only_bodhi.json()["scanned"] == 3
    koji = await client.post(
        URL, headers=auth("alice"), json=preview(tracking, applications=["koji"])
    )
    assert koji.json()["total"] == 3


async def test_window_pagination_and_budget(
    client: httpx.AsyncClient, auth: Any, archived: None, make_app: Any, api_settings: Any
) -> None:
    tracking = {"name": "related-events", "params": None}
    one_day = await client.post(URL, headers=auth("alice"), json=preview(tracking, days=1))
    assert one_day.json()["total"] == 1 and len(one_day.json()["per_day"]) == 1
    paged = await client.post(
        f"{URL}?page=2&page_size=2", headers=auth("alice"), json=preview(tracking)
    )
    assert paged.json()["total"] == 3 and len(paged.json()["notifications"]) == 1
    assert (
        await client.post(URL, headers=auth("alice"), json=preview(tracking, days=15))
    ).status_code == 422

    settings = api_settings.model_copy(
        update={"api": api_settings.api.model_copy(update={"preview_time_budget": 0.0})}
    )
    app = await make_app(settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        starved = await http.post(URL, headers=auth("alice"), json=preview(tracking))
    assert starved.status_code == 200
    assert starved.json()["complete"] is False
    assert starved.json()["scanned"] < 3


async def test_never_past_the_retention(
    auth: Any, archived: None, session: AsyncSession, make_app: Any, api_settings: Any
) -> None:
    """Rows older than the retention wait only for the next prune: a preview reads none."""
    await archive(session, [koji_build("alice", "python-foo", ago(2.5))])
    settings = api_settings.model_copy(
        update={"archive": api_settings.archive.model_copy(update={"retention_days": 2})}
    )
    app = await make_app(settings)
    tracking = {"name": "related-events", "params": None}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        response = await http.post(URL, headers=auth("alice"), json=preview(tracking))
    result = response.json()
    # Alice's messages were sent 0.01, 1.01, 1.02, 2.5 and 9 days ago: three within 2 days.
    assert result["total"] == 3 and result["scanned"] == 3, result
    sent = [dt.datetime.fromisoformat(n["message"]["sent_at"]) for n in result["notifications"]]
    assert all(s > NOW - dt.timedelta(days=2) for s in sent)
    assert sum(d["count"] for d in result["per_day"]) == 3


async def test_nothing_archived(client: httpx.AsyncClient, auth: Any) -> None:
    response = await client.post(
        URL, headers=auth("alice"), json=preview({"name": "related-events", "params": None})
    )
    assert response.status_code == 200
    result = response.json()
    assert (result["total"], result["scanned"], result["complete"]) == (0, 0, True)
    assert [d["count"] for d in result["per_day"]] == [0] * 7


def with_api(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(update={"api": settings.api.model_copy(update=changes)})


@pytest.mark.parametrize(
    ("tracking", "cap"),
    [
        ({"name": "artifacts-owned", "params": [f"user{i}" for i in range(1000)]}, "100 names"),
        ({"name": "artifacts-group-owned", "params": [f"g{i}" for i in range(101)]}, "100 names"),
        ({"name": "users-followed", "params": [f"user{i}" for i in range(1000)]}, "100 names"),
        (
            {
                "name": "artifacts-followed",
                "params": [{"name": f"p{i}", "type": "rpms"} for i in range(501)],
            },
            "500 artifacts",
        ),
    ],
)
async def test_names_and_artifacts_per_preview_are_capped(
    client: httpx.AsyncClient, auth: Any, tracking: dict[str, Any], cap: str
) -> None:
    response = await client.post(URL, headers=auth("alice"), json=preview(tracking))
    assert response.status_code == 422, response.text
    error = response.json()["detail"][0]
    assert error["loc"] == ["body", "rule", "tracking_rule", "params"]
    assert f"at most {cap}" in error["msg"]


async def test_a_preview_of_1000_names_stops_expanding_at_its_budget(
    make_app: Any, api_settings: Settings, auth: Any, directory_server: RunningServer
) -> None:
    """Against the directory server over HTTP (FASJSON and dist-git): the names are looked up
    within the budget, not all of them first."""
    directory_server.load(json.loads(json.dumps(DIRECTORY)))
    remote = make_remote_directory(client_settings(directory_server.url), backoff=0.01)
    settings = with_api(api_settings, preview_max_names=1000, preview_time_budget=0.2)
    app = await make_app(settings, directory=remote)
    names = ["alice", *(f"user{i}" for i in range(999))]
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as http:
            await http.get("/api/v1/users/me", headers=auth("alice"))
            directory_server.reset_stats()
            body = preview({"name": "artifacts-owned", "params": names})
            response = await http.post(URL, headers=auth("alice"), json=body)
    finally:
        await remote.aclose()
    assert response.status_code == 200, response.text
    assert response.json()["complete"] is False  # cut by the budget
    assert directory_server.stats()["requests"] < len(names)


class HeldDirectory(LocalDirectory):
    """The tests' directory, whose ownership look-ups wait until the test lets them go."""

    entered: asyncio.Event
    release: asyncio.Event

    async def get_user_projects(self, username: str) -> list[str]:
        self.entered.set()
        await self.release.wait()
        return await super().get_user_projects(username)


async def test_one_running_preview_per_user(
    make_app: Any, api_settings: Settings, auth: Any, archived: None
) -> None:
    directory = HeldDirectory(DirectoryData.model_validate(json.loads(json.dumps(DIRECTORY))))
    directory.entered, directory.release = asyncio.Event(), asyncio.Event()
    settings = with_api(api_settings, preview_time_budget=30.0)
    first_app = await make_app(settings, directory=directory)
    other_app = await make_app(settings, directory=directory)  # another API process
    owned = preview({"name": "artifacts-owned", "params": ["alice"]})
    related = preview({"name": "related-events", "params": None})
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=first_app), base_url="http://a") as a,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=other_app), base_url="http://b") as b,
    ):
        await a.get("/api/v1/users/me", headers=auth("alice"))
        running = asyncio.create_task(a.post(URL, headers=auth("alice"), json=owned))
        await asyncio.wait_for(directory.entered.wait(), 10)
        for http in (a, b):
            refused = await http.post(URL, headers=auth("alice"), json=related)
            assert refused.status_code == 429, refused.text
            assert int(refused.headers["retry-after"]) >= 1
            assert "already running" in refused.json()["detail"]
        bobs = await a.post(
            "/api/v1/users/bob/rules/preview", headers=auth("bob"), json=preview_for("bob")
        )
        assert bobs.status_code == 200, bobs.text  # one per user, not one for everyone
        directory.release.set()
        first = await running
        assert first.status_code == 200 and first.json()["complete"] is True
        again = await b.post(URL, headers=auth("alice"), json=related)
        assert again.status_code == 200, again.text


def preview_for(user: str) -> dict[str, Any]:
    body = preview({"name": "related-events", "params": None})
    body["rule"]["generation_rules"][0]["destinations"] = [
        {"protocol": "email", "address": f"{user}@example.org"}
    ]
    return body

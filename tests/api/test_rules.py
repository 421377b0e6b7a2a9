"""Rules: FMN 3's JSON, destination checks, limits, 422s naming the field, and the
fmn.rule.* announcements arriving on a real RabbitMQ vhost after the commit."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fmn.db import models
from fmn.directory.local import DirectoryData, LocalDirectory
from tests.api.conftest import DIRECTORY, BusListener, rule_body
from tests.factories import make_rule, make_user

API = "/api/v1/users/alice/rules"


async def test_create_read_update_delete_with_announcements(
    client: httpx.AsyncClient, auth: Any, bus: BusListener, session: AsyncSession
) -> None:
    headers = auth("alice")
    await client.get("/api/v1/users/me", headers=headers)  # first login: "My Events"
    first = await bus.next()
    assert first.routing_key == "org.example.test.fmn.rule.create.v1"

    body = rule_body(name="Builds", tracking={"name": "artifacts-owned", "params": ["alice"]})
    body["generation_rules"][0]["filters"] = {"applications": ["koji"], "topic": "*.build.*"}
    created = await client.post(API, headers=headers, json=body)
    assert created.status_code == 200, created.text
    rule = created.json()
    assert rule["name"] == "Builds" and rule["disabled"] is False
    assert rule["user"] == {"id": rule["user"]["id"], "name": "alice", "is_admin": False}
    assert rule["generation_rules"][0]["filters"] == {
        "applications": ["koji"],
        "excluded_applications": [],
        "severities": [],
        "topic": "*.build.*",
        "my_actions": False,
    }
    assert rule["generated_last_week"] == 0 and rule["muted_until"] is None

    announced = await bus.next()
    assert announced.routing_key == "org.example.test.fmn.rule.create.v1"
    assert json.loads(announced.body) == {
        "rule": {"id": rule["id"], "name": "Builds"},
        "user": {"name": "alice"},
    }
    assert announced.headers["fedora_messaging_schema"] == "fmn.api.rule.create.v1"
    # Committed before the announcement went out.
    assert await session.get(models.Rule, rule["id"]) is not None

    listed = await client.get(API, headers=headers)
    assert [r["name"] for r in listed.json()] == ["My Events", "Builds"]
    assert listed.headers["x-total-count"] == "2"

    rule["name"] = "Renamed"
    rule["generation_rules"][0]["destinations"].append(
        {"protocol": "matrix", "address": "@alice:matrix.org"}
    )
    updated = await client.put(f"{API}/{rule['id']}", headers=headers, json=rule)
    assert updated.status_code == 200, updated.text
    assert updated.json()["name"] == "Renamed"
    assert len(updated.json()["generation_rules"][0]["destinations"]) == 2
    announced = await bus.next()
    assert announced.routing_key.endswith("fmn.rule.update.v1")
    assert json.loads(announced.body)["rule"] == {"id": rule["id"], "name": "Renamed"}

    deleted = await client.delete(f"{API}/{rule['id']}", headers=headers)
    assert deleted.status_code == 200 and deleted.json() is None
    announced = await bus.next()
    assert announced.routing_key.endswith("fmn.rule.delete.v1")
    assert json.loads(announced.body) == {
        "rule": {"id": rule["id"], "name": "Renamed"},
        "user": {"name": "alice"},
    }
    assert (await client.get(f"{API}/{rule['id']}", headers=headers)).status_code == 404


async def test_patch_disables_and_mutes(
    client: httpx.AsyncClient, auth: Any, session: AsyncSession, bus: BusListener
) -> None:
    rule = await make_rule(session, await make_user(session, "alice"))
    await session.commit()
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)).replace(microsecond=0)
    response = await client.patch(
        f"{API}/{rule.id}",
        headers=auth("alice"),
        json={"disabled": True, "muted_until": until.isoformat()},
    )
    assert response.status_code == 200, response.text
    assert response.json()["disabled"] is True
    assert dt.datetime.fromisoformat(response.json()["muted_until"]) == until
    assert (await bus.next()).routing_key.endswith("fmn.rule.update.v1")
    # Leaving a field out keeps it; null unmutes.
    response = await client.patch(
        f"{API}/{rule.id}", headers=auth("alice"), json={"muted_until": None}
    )
    assert response.json()["disabled"] is True and response.json()["muted_until"] is None
    # Nothing changed: nothing announced.
    response = await client.patch(f"{API}/{rule.id}", headers=auth("alice"), json={})
    assert response.status_code == 200
    await bus.next()  # the unmute
    assert await bus.nothing()


async def test_destinations_must_be_the_users_own(
    client: httpx.AsyncClient, auth: Any, session: AsyncSession
) -> None:
    headers = auth("alice")
    for protocol, address in [
        ("email", "alice.other@example.com"),  # case does not matter for emails
        ("irc", "alice_irc"),
        ("irc", "alice_libera"),
        ("matrix", "@alice:matrix.org"),
        ("matrix", "@alice_fed:fedora.im"),
    ]:
        body = rule_body()
        body["generation_rules"][0]["destinations"] = [{"protocol": protocol, "address": address}]
        response = await client.post(API, headers=headers, json=body)
        assert response.status_code == 200, (address, response.text)

    body = rule_body("bob@example.org")
    body["generation_rules"].append(
        {"destinations": [{"protocol": "irc", "address": "alice_irc"}], "filters": {}}
    )
    body["generation_rules"][1]["destinations"].append({"protocol": "irc", "address": "bob"})
    response = await client.post(API, headers=headers, json=body)
    assert response.status_code == 422
    locations = [e["loc"] for e in response.json()["detail"]]
    assert locations == [
        ["body", "generation_rules", 0, "destinations", 0, "address"],
        ["body", "generation_rules", 1, "destinations", 1, "address"],
    ]
    assert "bob@example.org is not one of your email addresses" in response.text

    rule = await make_rule(session, await make_user(session, "someone"))
    await session.commit()
    # Someone else's rule id under alice's name: 404, not theirs to see.
    response = await client.put(f"{API}/{rule.id}", headers=headers, json=rule_body())
    assert response.status_code == 404


async def test_empty_name_and_topic_round_trip_as_in_fmn3(
    client: httpx.AsyncClient, auth: Any
) -> None:
    """FMN 3's web app sends "" for a cleared name or topic field; FMN 3 keeps it."""
    headers = auth("alice")
    body = rule_body(name="")
    body["generation_rules"][0]["filters"] = {"topic": ""}
    created = await client.post(API, headers=headers, json=body)
    assert created.status_code == 200, created.text
    rule = created.json()
    read = (await client.get(f"{API}/{rule['id']}", headers=headers)).json()
    for answer in (rule, read):
        assert answer["name"] == ""
        assert answer["generation_rules"][0]["filters"]["topic"] == ""
    rule["name"] = "named"
    rule["generation_rules"][0]["filters"]["topic"] = "*.koji.*"
    named = await client.put(f"{API}/{rule['id']}", headers=headers, json=rule)
    assert named.status_code == 200, named.text
    cleared = {**named.json(), "name": ""}
    cleared["generation_rules"][0]["filters"]["topic"] = ""
    again = await client.put(f"{API}/{rule['id']}", headers=headers, json=cleared)
    assert again.status_code == 200, again.text
    assert again.json()["name"] == ""
    assert again.json()["generation_rules"][0]["filters"]["topic"] == ""


async def test_request_bodies_fmn3_accepts_are_accepted(
    client: httpx.AsyncClient, auth: Any
) -> None:
    """FMN 3's NewRule takes a string as related-events' unused params; a rule it would have
    stored broken (an unknown severity breaks its matching) stays a 422 naming the field."""
    headers = auth("alice")
    body = rule_body(tracking={"name": "related-events", "params": ""})
    created = await client.post(API, headers=headers, json=body)
    assert created.status_code == 200, created.text
    assert created.json()["tracking_rule"] == {"name": "related-events", "params": ""}
    broken = rule_body()
    broken["generation_rules"][0]["filters"] = {"severities": ["loud"]}
    refused = await client.post(API, headers=headers, json=broken)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"][:4] == ["body", "generation_rules", 0, "filters"]


async def test_bad_input_is_422_naming_the_field(client: httpx.AsyncClient, auth: Any) -> None:
    headers = auth("alice")
    cases: list[tuple[Any, list[Any]]] = [
        ({**rule_body(), "name": "x" * 300}, ["body", "name"]),
        ({**rule_body(), "name": "line\nbreak"}, ["body", "name"]),
        (
            {**rule_body(), "tracking_rule": {"name": "nope", "params": []}},
            ["body", "tracking_rule"],
        ),
        (
            {**rule_body(), "tracking_rule": {"name": "users-followed", "params": ["u"] * 1001}},
            ["body", "tracking_rule", "users-followed", "params"],
        ),
        ({**rule_body(), "generation_rules": []}, ["body", "generation_rules"]),
        ({**rule_body(), "unknown": 1}, ["body", "unknown"]),
        ("not json", ["body"]),
    ]
    for body, loc in cases:
        if isinstance(body, str):
            response = await client.post(API, headers=headers, content=body)
        else:
            response = await client.post(API, headers=headers, json=body)
        assert response.status_code == 422, (loc, response.text)
        assert loc in [e["loc"][: len(loc)] for e in response.json()["detail"]], response.text
    bad_dest = rule_body()
    bad_dest["generation_rules"][0]["destinations"][0]["address"] = "not an email"
    response = await client.post(API, headers=headers, json=bad_dest)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][:4] == [
        "body",
        "generation_rules",
        0,
        "destinations",
    ]
    for path in (f"{API}/abc", f"{API}/0", f"{API}/99999999999999999999"):
        assert (await client.get(path, headers=headers)).status_code == 422
    assert (await client.get(f"{API}?page=0", headers=headers)).status_code == 422
    response = await client.get(f"{API}?page_size=501", headers=headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "page_size"]


async def test_rule_count_and_body_size_limits(make_app: Any, api_settings: Any, auth: Any) -> None:
    settings = api_settings.model_copy(
        update={
            "api": api_settings.api.model_copy(
                update={"max_rules_per_user": 2, "max_body_size": 2000}
            )
        }
    )
    app = await make_app(settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        headers = auth("alice")
        await http.get("/api/v1/users/me", headers=headers)  # 1: My Events
        assert (await http.post(API, headers=headers, json=rule_body())).status_code == 200
        third = await http.post(API, headers=headers, json=rule_body())
        assert third.status_code == 422
        assert "at most 2 rules" in third.text
        big = rule_body(name="x" * 100)
        big["tracking_rule"] = {"name": "users-followed", "params": ["someone"] * 300}
        response = await http.post(API, headers=headers, json=big)
        assert response.status_code == 413
        # Streamed without a length: refused all the same.

        async def chunks() -> Any:
            for _ in range(10):
                yield b" " * 500

        response = await http.post(
            API, headers={**headers, "content-type": "application/json"}, content=chunks()
        )
        assert response.status_code == 413


async def test_list_pagination(client: httpx.AsyncClient, auth: Any, session: AsyncSession) -> None:
    alice = await make_user(session, "alice")
    for i in range(7):
        await make_rule(session, alice, name=f"r{i}")
    await session.commit()
    response = await client.get(f"{API}?page=2&page_size=3", headers=auth("alice"))
    assert [r["name"] for r in response.json()] == ["r3", "r4", "r5"]
    assert response.headers["x-total-count"] == "7"
    assert response.headers["x-page"] == "2" and response.headers["x-page-size"] == "3"
    response = await client.get(f"{API}?page=9&page_size=3", headers=auth("alice"))
    assert response.json() == [] and response.headers["x-total-count"] == "7"


async def test_generated_last_week_and_stats(
    client: httpx.AsyncClient, auth: Any, session: AsyncSession
) -> None:
    rule = await make_rule(session, await make_user(session, "alice"))
    now = dt.datetime.now(dt.UTC)
    for days_ago, count in [(0, 2), (0, 3), (2, 4), (10, 100)]:
        session.add(
            models.Generated(rule_id=rule.id, when=now - dt.timedelta(days=days_ago), count=count)
        )
    await session.commit()
    listed = (await client.get(API, headers=auth("alice"))).json()
    assert listed[0]["generated_last_week"] == 9
    stats = await client.get(f"{API}/{rule.id}/stats?days=3", headers=auth("alice"))
    assert stats.status_code == 200
    series = stats.json()["series"]
    assert [d["count"] for d in series] == [4, 0, 5]
    assert series[-1]["date"] == now.date().isoformat()
    assert (
        await client.get(f"{API}/{rule.id}/stats?days=0", headers=auth("alice"))
    ).status_code == 422


async def test_rules_survive_a_broker_outage(
    make_app: Any, api_settings: Any, auth: Any, session: AsyncSession, caplog: Any
) -> None:
    """The change is committed even though it cannot be announced; the failure is logged."""
    settings = api_settings.model_copy(
        update={
            "bus": api_settings.bus.model_copy(
                update={"amqp_url": "amqp://guest:guest@127.0.0.1:9/"}
            )
        }
    )
    app = await make_app(settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        response = await http.post(API, headers=auth("alice"), json=rule_body(name="kept"))
        assert response.status_code == 200
        await app.state.services.announcer.drain()
    names = await session.scalars(select(models.Rule.name))
    assert "kept" in list(names)
    assert "gave up announcing fmn.rule.create.v1" in caplog.text
    assert app.state.services.announcer.failed >= 1


async def test_fast_reads_match_the_store(
    client: httpx.AsyncClient, auth: Any, session: AsyncSession
) -> None:
    """The list, one rule and the admin list answer what the one rule reader reads."""
    from fmn.rules.store import read_rules

    alice = await make_user(session, "alice")
    await make_rule(
        session,
        alice,
        name="many parts",
        tracking="artifacts-followed",
        params=[{"name": "foo", "type": "rpms"}, {"name": "bar", "type": "containers"}],
        destinations=[("email", "alice@example.org"), ("irc", "alice_irc")],
        filters={"applications": ["koji"], "topic": "*.x", "my_actions": True},
    )
    second = await make_rule(session, alice, name=None, tracking="users-followed", params=["b"])
    extra = models.GenerationRule(rule_id=second.id)
    extra.destinations.append(models.Destination(protocol="matrix", address="@alice:matrix.org"))
    extra.filters.append(models.Filter(name="severities", params=["error"]))
    session.add(extra)
    await make_rule(session, alice, name="off", disabled=True)
    session.add(models.Generated(rule_id=second.id, count=4))
    await session.commit()
    second_id = second.id
    session.expire_all()
    read = await read_rules(session, username="alice")
    stored = [r.rule.model_dump(mode="json") for r in read.rules]
    served = (await client.get(API, headers=auth("alice"))).json()
    assert [{k: v for k, v in r.items() if k != "muted_until"} for r in served] == stored
    assert [r["name"] for r in served] == ["many parts", None, "off"]
    assert served[1]["generated_last_week"] == 4
    assert [g["filters"]["severities"] for g in served[1]["generation_rules"]] == [[], ["error"]]
    single = (await client.get(f"{API}/{second_id}", headers=auth("alice"))).json()
    assert single == served[1]
    admin = (await client.get("/api/v1/admin/rules?username=alice", headers=auth("root"))).json()
    assert admin == served


class RecordingDirectory(LocalDirectory):
    """The tests' directory, noting every name it is asked about."""

    asked: list[str]

    async def get_user(self, username: str) -> dict[str, Any] | None:
        self.asked.append(username)
        return await super().get_user(username)

    async def get_user_groups(self, username: str) -> list[str]:
        self.asked.append(username)
        return await super().get_user_groups(username)

    async def get_user_projects(self, username: str) -> list[str]:
        self.asked.append(username)
        return await super().get_user_projects(username)

    async def get_group_projects(self, group: str) -> list[str]:
        self.asked.append(group)
        return await super().get_group_projects(group)


@pytest.mark.parametrize("bad", ["..", ".", "a/b", "-rf", "a b", "caf\u00e9", "x\\y", "a%2Fb"])
async def test_account_names_refused_before_any_directory_call(
    make_app: Any, auth: Any, bad: str
) -> None:
    directory = RecordingDirectory(DirectoryData.model_validate(json.loads(json.dumps(DIRECTORY))))
    directory.asked = []
    app = await make_app(directory=directory)
    headers = auth("alice")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        await http.get("/api/v1/users/me", headers=headers)
        before = await http.get(API, headers=headers)
        cases = [
            ("artifacts-owned", ["alice", bad], "username"),
            ("artifacts-group-owned", [bad], "group name"),
            ("users-followed", [bad], "username"),
        ]
        for tracking, params, kind in cases:
            body = rule_body(tracking={"name": tracking, "params": params})
            response = await http.post(API, headers=headers, json=body)
            assert response.status_code == 422, response.text
            error = response.json()["detail"][0]
            index = params.index(bad)
            assert error["loc"] == ["body", "tracking_rule", "params", index], error
            assert f"not a valid {kind}" in error["msg"]
            draft = {"rule": body, "days": 1}
            response = await http.post(f"{API}/preview", headers=headers, json=draft)
            assert response.status_code == 422, response.text
            loc = response.json()["detail"][0]["loc"]
            assert loc == ["body", "rule", "tracking_rule", "params", index]
        response = await http.get("/api/v1/artifacts", params={"users": bad}, headers=headers)
        assert response.status_code == 422 and response.json()["detail"][0]["loc"][:2] == [
            "query",
            "users",
        ]
        if "/" not in bad and bad not in (".", ".."):  # those never reach the route as one name
            path = f"/api/v1/users/{quote(bad, safe='')}/groups"
            response = await http.get(path, headers=headers)
            assert response.status_code == 422, (path, response.text)
            assert response.json()["detail"][0]["loc"] == ["path", "username"]
        after = await http.get(API, headers=headers)
    assert after.json() == before.json()  # nothing was created
    assert bad not in directory.asked and set(directory.asked) <= {"alice"}

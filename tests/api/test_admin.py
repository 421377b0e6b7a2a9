"""Admin endpoints: every rule and user, enabling/disabling, dead letters on a real RabbitMQ
vhost, and the status page."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from fmn.core.settings import Settings
from fmn.sendqueue.deadletters import dead_letter, discard_dead_letters, open_broker
from fmn.sendqueue.topology import send_queue
from fmn.sendqueue.workitem import MessageInfo, RuleRef, WorkItem
from fmn.transport.base import Broker
from tests.api.conftest import BusListener
from tests.factories import make_rule, make_user


async def test_all_rules_with_filters(
    client: httpx.AsyncClient, auth: Any, session: AsyncSession
) -> None:
    alice, bob = await make_user(session, "alice"), await make_user(session, "bob")
    await make_rule(session, alice, name="a1")
    await make_rule(session, alice, name="a2", disabled=True)
    await make_rule(session, bob, name="b1")
    await session.commit()
    headers = auth("root")
    everything = await client.get("/api/v1/admin/rules", headers=headers)
    names = [r["name"] for r in everything.json()]
    assert {"a1", "a2", "b1"} <= set(names)
    disabled = await client.get("/api/v1/admin/rules?disabled=true", headers=headers)
    assert [r["name"] for r in disabled.json()] == ["a2"]
    bobs = await client.get("/api/v1/admin/rules?username=bob", headers=headers)
    assert [r["name"] for r in bobs.json()] == ["b1"]
    paged = await client.get("/api/v1/admin/rules?username=alice&page_size=1", headers=headers)
    assert len(paged.json()) == 1 and paged.headers["x-total-count"] == "2"


async def test_users_search_escapes_wildcards(
    client: httpx.AsyncClient, auth: Any, session: AsyncSession
) -> None:
    for name in ("alice", "malice", "bob", "a_b", "a%b"):
        await make_user(session, name)
    await session.commit()
    headers = auth("root")
    found = await client.get("/api/v1/admin/users?search=lic", headers=headers)
    assert [u["name"] for u in found.json()] == ["alice", "malice"]
    assert set(found.json()[0]) == {"id", "name", "is_admin"}
    underscore = await client.get("/api/v1/admin/users?search=_", headers=headers)
    assert [u["name"] for u in underscore.json()] == ["a_b"]
    percent = await client.get("/api/v1/admin/users?search=%25", headers=headers)
    assert [u["name"] for u in percent.json()] == ["a%b"]


async def test_patch_any_rule_announces_only_changes(
    client: httpx.AsyncClient, auth: Any, session: AsyncSession, bus: BusListener
) -> None:
    rule = await make_rule(session, await make_user(session, "bob"), name="b1")
    await session.commit()
    await client.get("/api/v1/users/me", headers=auth("root"))
    assert (await bus.next()).routing_key.endswith("fmn.rule.create.v1")  # root's My Events
    url = f"/api/v1/admin/rules/{rule.id}"
    response = await client.patch(url, headers=auth("root"), json={"disabled": True})
    assert response.status_code == 200 and response.json()["disabled"] is True
    message = await bus.next()
    assert message.routing_key.endswith("fmn.rule.update.v1")
    assert json.loads(message.body) == {
        "rule": {"id": rule.id, "name": "b1"},
        "user": {"name": "bob"},
    }
    again = await client.patch(url, headers=auth("root"), json={"disabled": True})
    assert again.status_code == 200
    assert await bus.nothing()
    # FMN 3's RulePatch has every field optional: no change is a 200 with nothing announced.
    for unchanged in ({}, {"disabled": None}):
        answer = await client.patch(url, headers=auth("root"), json=unchanged)
        assert answer.status_code == 200, answer.text
        assert answer.json()["disabled"] is True
    assert await bus.nothing()
    typo = await client.patch(url, headers=auth("root"), json={"disable": False})
    assert typo.status_code == 422 and typo.json()["detail"][0]["loc"] == ["body", "disable"]
    missing = await client.patch(
        "/api/v1/admin/rules/999999", headers=auth("root"), json={"disabled": False}
    )
    assert missing.status_code == 404
    assert missing.json() == {"detail": "No rule 999999"}


def work_item(n: int) -> WorkItem:
    return WorkItem(
        key=f"msg-{n}/email/alice@example.org",
        protocol="email",
        address="alice@example.org",
        user="alice",
        rules=[RuleRef(id=1, name="r")],
        message=MessageInfo(
            id=f"msg-{n}",
            topic="org.fedoraproject.prod.buildsys.build.state.change",
            sent_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            summary=f"build {n} failed",
        ),
    )


@pytest.fixture
async def send_broker(api_settings: Settings) -> AsyncIterator[Broker]:
    broker = await open_broker(api_settings.send_queue)
    exchange = api_settings.send_queue.exchange
    await discard_dead_letters(broker, exchange)
    for n in range(3):
        await dead_letter(broker, exchange, "email", work_item(n).to_bytes(), f"SMTP 550 ({n})", 4)
    yield broker
    await discard_dead_letters(broker, exchange)
    await broker.close()


async def test_dead_letters_list_replay_discard(
    client: httpx.AsyncClient, auth: Any, send_broker: Broker, api_settings: Settings
) -> None:
    headers = auth("root")
    listed = await client.get("/api/v1/admin/deadletters?page_size=2", headers=headers)
    assert listed.status_code == 200, listed.text
    assert listed.headers["x-total-count"] == "3"
    letters = listed.json()
    assert [d["summary"] for d in letters] == ["build 0 failed", "build 1 failed"]
    assert letters[0]["reason"] == "SMTP 550 (0)" and letters[0]["attempts"] == 4
    assert letters[0]["user"] == "alice" and letters[0]["protocol"] == "email"
    assert (
        await client.get("/api/v1/admin/deadletters?protocol=irc", headers=headers)
    ).json() == []
    bad = await client.get("/api/v1/admin/deadletters?protocol=fax", headers=headers)
    assert bad.status_code == 422

    exchange = api_settings.send_queue.exchange
    before = await send_broker.queue_size(send_queue(exchange, "email"))
    replayed = await client.post(
        f"/api/v1/admin/deadletters/{letters[0]['id']}/replay", headers=headers
    )
    assert replayed.status_code == 204
    assert await send_broker.queue_size(send_queue(exchange, "email")) == before + 1
    discarded = await client.delete(
        f"/api/v1/admin/deadletters/{letters[1]['id']}", headers=headers
    )
    assert discarded.status_code == 204
    left = (await client.get("/api/v1/admin/deadletters", headers=headers)).json()
    assert [d["summary"] for d in left] == ["build 2 failed"]
    again = await client.delete(f"/api/v1/admin/deadletters/{letters[1]['id']}", headers=headers)
    assert again.status_code == 404


async def test_status_lists_the_components(client: httpx.AsyncClient, auth: Any) -> None:
    response = await client.get("/api/v1/admin/status", headers=auth("root"))
    assert response.status_code == 200
    components = {c["name"]: c for c in response.json()["components"]}
    assert set(components) == {
        "database",
        "migrations",
        "bus",
        "cache",
        "directory",
        "send queues",
        "announcements",
    }
    assert all(c["ok"] for c in components.values()), components
    assert "email:" in components["send queues"]["detail"]

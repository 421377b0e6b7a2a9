"""The rules list is served from each API process's page cache (fmn.api.rule_cache) and by a
shortcut around FastAPI's routing (fmn.api.rules_shortcut): whoever changes a rule — the user
through another API process, an admin, `fmn rules import`, plain SQL, the consumer counting
notifications — the next list shows it, and the shortcut answers exactly as the route does."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from fmn.db import models
from fmn.rules import transfer
from fmn.rules.store import load_rules
from tests.factories import make_rule, make_user

API = "/api/v1/users/alice/rules"


def client_of(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def stored(session: AsyncSession) -> list[dict[str, Any]]:
    """Alice's rules as the store reads them now (FMN 3's JSON, without muted_until)."""
    session.expire_all()
    return [r.model_dump(mode="json") for r in await load_rules(session, username="alice")]


async def listed(http: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await http.get(API, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["x-total-count"] == str(len(response.json()))
    return [{k: v for k, v in r.items() if k != "muted_until"} for r in response.json()]


async def test_the_list_shows_every_committed_change_whoever_made_it(
    make_app: Any, auth: Any, session: AsyncSession
) -> None:
    alice = await make_user(session, "alice")
    rule = await make_rule(
        session, alice, name="builds", filters={"applications": ["koji"], "topic": "*.build"}
    )
    await make_rule(session, alice, name="other")
    await session.commit()
    rule_id = rule.id  # `stored` expires the session's objects
    # Two API processes: `reader` keeps serving the list, `writer` changes things.
    reader, writer = client_of(await make_app()), client_of(await make_app())
    alices, roots = auth("alice"), auth("root")

    async def reader_sees_the_store() -> list[dict[str, Any]]:
        for _ in range(2):  # the second answer comes from the cache, through the shortcut
            assert await listed(reader, alices) == await stored(session)
        return await listed(reader, alices)

    first = await reader_sees_the_store()
    assert [r["name"] for r in first] == ["builds", "other"]

    # The user, through the other process: a rename keeping every id, then a mute.
    body = {k: v for k, v in first[0].items() if k not in ("generated_last_week",)}
    body["name"] = "renamed"
    assert (await writer.put(f"{API}/{rule_id}", headers=alices, json=body)).status_code == 200
    assert (await reader_sees_the_store())[0]["name"] == "renamed"
    patch = {"disabled": True}
    assert (await writer.patch(f"{API}/{rule_id}", headers=alices, json=patch)).status_code == 200
    assert (await reader_sees_the_store())[0]["disabled"] is True

    # An admin.
    response = await writer.patch(
        f"/api/v1/admin/rules/{rule_id}", headers=roots, json={"disabled": False}
    )
    assert response.status_code == 200, response.text
    assert (await reader_sees_the_store())[0]["disabled"] is False

    # `fmn rules import` replacing the rule in place: same rule, generation rule, destination
    # and filter ids, one filter value changed.
    exported = await transfer.export_rules(session, "alice")
    exported[0]["generation_rules"][0]["filters"]["topic"] = "*.build.complete"
    report = await transfer.import_rules(session, transfer.parse_rules(exported))
    await session.commit()
    assert report.updated == [rule_id]
    generation = (await reader_sees_the_store())[0]["generation_rules"][0]
    assert generation["filters"]["topic"] == "*.build.complete"
    # ... and adding a rule.
    exported[0]["id"] += 1000
    exported[0]["name"] = "imported"
    exported[0]["generation_rules"][0]["id"] += 1000
    await transfer.import_rules(session, transfer.parse_rules(exported[:1]))
    await session.commit()
    assert [r["name"] for r in await reader_sees_the_store()] == ["renamed", "other", "imported"]

    # Plain SQL.
    await session.execute(
        text(
            "UPDATE destinations SET address = 'elsewhere@example.org' WHERE generation_rule_id IN "
            "(SELECT id FROM generation_rules WHERE rule_id = :rule)"
        ),
        {"rule": rule_id},
    )
    await session.commit()
    destinations = (await reader_sees_the_store())[0]["generation_rules"][0]["destinations"]
    assert destinations == [{"protocol": "email", "address": "elsewhere@example.org"}]

    # The consumer counting notifications.
    session.add(models.Generated(rule_id=rule_id, when=dt.datetime.now(dt.UTC), count=5))
    await session.commit()
    assert (await reader_sees_the_store())[0]["generated_last_week"] == 5
    await session.execute(
        text("UPDATE generated SET count = count + 2 WHERE rule_id = :rule"), {"rule": rule_id}
    )
    await session.commit()
    assert (await reader_sees_the_store())[0]["generated_last_week"] == 7

    # Deleting.
    for r in await reader_sees_the_store():
        assert (await writer.delete(f"{API}/{r['id']}", headers=alices)).status_code == 200
    assert await reader_sees_the_store() == []


async def test_the_shortcut_answers_as_the_route_does(
    client: httpx.AsyncClient, auth: Any, session: AsyncSession
) -> None:
    """A token's first request goes through FastAPI (the identity is checked and remembered),
    the next ones through the shortcut: same status, same headers, same bytes."""
    alice = await make_user(session, "alice")
    for i in range(4):
        await make_rule(session, alice, name=f"r{i}")
    await session.commit()
    requests = [
        (API, "alice"),
        (f"{API}?page=2&page_size=3", "alice"),
        (f"{API}?page=5&page_size=3", "alice"),  # past the end
        (f"{API}?page=0", "alice"),  # 422
        (f"{API}?page_size=100000", "alice"),  # 422
        (API, "bob"),  # someone else's: 403
        (API, "root"),  # an admin too: 403
        (API, None),  # 401
        ("/api/v1/users/bob/rules", "alice"),  # 403
    ]
    for url, user in requests:
        answers = [await client.get(url, headers=auth(user)) for _ in range(3)]
        for later in answers[1:]:
            assert later.status_code == answers[0].status_code, url
            assert later.content == answers[0].content, url
            for header in ("content-type", "x-total-count", "x-page", "x-page-size"):
                assert later.headers.get(header) == answers[0].headers.get(header), url
    page = await client.get(f"{API}?page=2&page_size=3", headers=auth("alice"))
    assert [r["name"] for r in page.json()] == ["r3"]
    assert page.headers["x-total-count"] == "4"
    assert (await client.get(API, headers=auth("bob"))).status_code == 403

"""The rules list is served from each API process's page cache (fmn.api.rule_cache): whoever
changes a rule — the user through another API process, an admin, `fmn rules import`, plain
SQL, the consumer counting notifications — the next list shows it, and a cached answer is the
route's answer.
The versions the cache checks are kept by triggers (migration 0002); the last tests here check
their locking with transactions of their own."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from fmn.api import rule_cache
from fmn.api.metrics import REGISTRY
from fmn.api.rule_cache import VersionChecks
from fmn.archive import GeneratedCounts
from fmn.db import models
from fmn.rules import transfer
from fmn.rules.store import read_rules
from tests.factories import make_rule, make_user

API = "/api/v1/users/alice/rules"


def client_of(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def stored(session: AsyncSession, username: str = "alice") -> list[dict[str, Any]]:
    """A user's rules as the store reads them now (FMN 3's JSON, without muted_until)."""
    session.expire_all()
    read = await read_rules(session, username=username)
    return [r.rule.model_dump(mode="json") for r in read.rules]


async def listed(
    http: httpx.AsyncClient, headers: dict[str, str], username: str = "alice"
) -> list[dict[str, Any]]:
    response = await http.get(f"/api/v1/users/{username}/rules", headers=headers)
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
        for _ in range(2):  # the second answer comes from the cache
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


async def test_cached_answers_are_the_first_answer(
    client: httpx.AsyncClient, auth: Any, session: AsyncSession
) -> None:
    """A token's first request checks the identity and reads the page, the next ones come from
    the identity memo and the page cache: same status, same headers, same bytes."""
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
    route = {"method": "GET", "route": "/api/v1/users/{username}/rules", "status": "200"}

    def answered() -> float:
        return REGISTRY.get_sample_value("fmn_api_requests_total", route) or 0.0

    for url, user in requests:
        before = answered()
        answers = [await client.get(url, headers=auth(user)) for _ in range(3)]
        for later in answers[1:]:
            assert later.status_code == answers[0].status_code, url
            assert later.content == answers[0].content, url
            assert later.headers.multi_items() == answers[0].headers.multi_items(), url
        # Each answer counted once in the metrics, whichever way it went.
        assert answered() - before == (3 if answers[0].status_code == 200 else 0), url
    page = await client.get(f"{API}?page=2&page_size=3", headers=auth("alice"))
    assert [r["name"] for r in page.json()] == ["r3"]
    assert page.headers["x-total-count"] == "4"
    assert (await client.get(API, headers=auth("bob"))).status_code == 403


async def test_rules_moved_between_users_and_a_user_deleted(
    make_app: Any, auth: Any, session: AsyncSession
) -> None:
    alice, bob = await make_user(session, "alice"), await make_user(session, "bob")
    rule = await make_rule(session, alice, name="moving", filters={"topic": "*.build"})
    other = await make_rule(session, bob, name="bob's", filters={"applications": ["koji"]})
    await session.commit()
    ids = {"rule": rule.id, "other": other.id, "alice": alice.id, "bob": bob.id}
    reader = client_of(await make_app())
    tokens = {"alice": auth("alice"), "bob": auth("bob")}

    async def both_see_the_store() -> dict[str, list[str]]:
        for name, headers in tokens.items():
            for _ in range(2):  # the second answer from the cache
                assert await listed(reader, headers, name) == await stored(session, name)
        return {n: [r["name"] for r in await listed(reader, h, n)] for n, h in tokens.items()}

    async def sql(statement: str) -> None:
        await session.execute(text(statement), ids)
        await session.commit()

    assert await both_see_the_store() == {"alice": ["moving"], "bob": ["bob's"]}
    await sql("UPDATE rules SET user_id = :bob WHERE id = :rule")
    assert await both_see_the_store() == {"alice": [], "bob": ["moving", "bob's"]}
    await sql("UPDATE rules SET user_id = :alice WHERE id = :rule")
    assert await both_see_the_store() == {"alice": ["moving"], "bob": ["bob's"]}
    # A second generation rule of bob's, then moved (with its destination) to alice's rule.
    await sql("INSERT INTO generation_rules (rule_id) VALUES (:other)")
    newest = "(SELECT max(id) FROM generation_rules WHERE rule_id = :other)"
    await sql(
        "INSERT INTO destinations (generation_rule_id, protocol, address) "
        f"VALUES ({newest}, 'email', 'extra@example.org')"
    )
    await both_see_the_store()
    assert len((await stored(session, "bob"))[0]["generation_rules"]) == 2
    await sql(f"UPDATE generation_rules SET rule_id = :rule WHERE id = {newest}")
    await both_see_the_store()
    assert len((await stored(session, "alice"))[0]["generation_rules"]) == 2
    assert len((await stored(session, "bob"))[0]["generation_rules"]) == 1
    # A filter moved from one generation rule to the other, a tracking rule changed.
    await sql(
        "UPDATE filters SET generation_rule_id = (SELECT max(id) FROM generation_rules "
        "WHERE rule_id = :rule) WHERE name = 'topic'"
    )
    await sql(
        "UPDATE tracking_rules SET name = 'users-followed', params = '[\"carol\"]' "
        "WHERE rule_id = :rule"
    )
    await both_see_the_store()
    assert (await stored(session))[0]["tracking_rule"]["params"] == ["carol"]

    # The user deleted: an empty list; then someone of that name again, with other rules.
    await sql("DELETE FROM users WHERE id = :alice")
    assert await both_see_the_store() == {"alice": [], "bob": ["bob's"]}
    await make_rule(session, await make_user(session, "alice"), name="new alice's")
    await session.commit()
    assert await both_see_the_store() == {"alice": ["new alice's"], "bob": ["bob's"]}


async def test_counts_flushed_and_leaving_the_week(
    make_app: Any, auth: Any, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = await make_user(session, "alice"), await make_user(session, "bob")
    rule = await make_rule(session, alice, name="counted")
    bobs = await make_rule(session, bob, name="bob's")
    await session.commit()
    rule_id, bobs_id = rule.id, bobs.id
    reader = client_of(await make_app())
    alices = auth("alice")

    async def count() -> int:
        for _ in range(2):
            assert await listed(reader, alices) == await stored(session)
        answer = await listed(reader, alices)
        return int(answer[0]["generated_last_week"])

    assert await count() == 0
    # The consumer's flush: several users' rules in one statement.
    counts = GeneratedCounts()
    counts.add([rule_id, rule_id, bobs_id])
    assert await counts.flush(session) == 2
    await session.commit()
    assert await count() == 2
    # A count of 6 days ago; then, 2 days later, it is no longer of the last 7 days although
    # nothing was written.
    now = dt.datetime.now(dt.UTC)
    session.add(models.Generated(rule_id=rule_id, when=now - dt.timedelta(days=6), count=10))
    await session.commit()
    assert await count() == 12
    later = rule_cache.week_ago() + dt.timedelta(days=2)
    monkeypatch.setattr(rule_cache, "week_ago", lambda: later)
    for _ in range(2):
        assert (await listed(reader, alices))[0]["generated_last_week"] == 2


async def test_a_failing_check_reads_the_page(
    make_app: Any, auth: Any, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    rule = await make_rule(session, await make_user(session, "alice"), name="before")
    await session.commit()
    rule_id = rule.id
    app = await make_app()
    reader = client_of(app)
    for _ in range(2):
        assert await listed(reader, auth("alice")) == await stored(session)

    async def broken(username: str) -> None:
        raise ConnectionError("the database went away")

    monkeypatch.setattr(app.state.services.rule_pages.checks, "version", broken)
    await session.execute(text("UPDATE rules SET name = 'after' WHERE id = :r"), {"r": rule_id})
    await session.commit()
    assert [r["name"] for r in await listed(reader, auth("alice"))] == ["after"]


async def test_version_checks_answer_concurrent_asks(
    db_connection: AsyncConnection, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asks that come together are answered by one query, each with its own user's versions;
    a failing query fails the asks it was for, and the next one works."""
    alice = await make_rule(session, await make_user(session, "alice"))
    await make_user(session, "bob")  # no rules: no versions yet
    await session.commit()
    expected = (
        await session.execute(
            text(
                "SELECT u.id, r.version, c.version FROM users u "
                "JOIN user_rules_versions r ON r.user_id = u.id "
                "LEFT JOIN user_counts_versions c ON c.user_id = u.id WHERE u.name = 'alice'"
            )
        )
    ).one()
    bob_id = (await session.execute(text("SELECT id FROM users WHERE name = 'bob'"))).scalar()
    assert alice.user_id == expected[0]
    checks = VersionChecks(db_connection)
    try:
        names = ["alice", "bob", "nobody"] * 5
        answers = await asyncio.gather(*(checks.version(n) for n in names))
        assert answers == [tuple(expected), (bob_id, None, None), None] * 5

        async def failing(names: list[str]) -> None:
            raise ConnectionError("gone")

        monkeypatch.setattr(checks, "_query", failing)
        failed = await asyncio.gather(*(checks.version(n) for n in names), return_exceptions=True)
        assert all(isinstance(f, ConnectionError) for f in failed)
        monkeypatch.undo()
        assert await checks.version("alice") == tuple(expected)
    finally:
        await checks.aclose()


# The triggers' locking, with committed transactions of their own (the other tests run in one
# transaction that is rolled back).


@pytest.fixture
async def committed(pg_url: str) -> AsyncIterator[dict[str, Any]]:
    """Two users and a rule of the second, committed; three connections; removed at the end."""
    dsn = pg_url.replace("+asyncpg", "")
    admin, one, two = [await asyncpg.connect(dsn) for _ in range(3)]
    suffix = uuid.uuid4().hex[:12]
    try:
        a, b = [
            await admin.fetchval("INSERT INTO users (name) VALUES ($1) RETURNING id", name)
            for name in (f"a-{suffix}", f"b-{suffix}")
        ]
        rule = await admin.fetchval(
            "INSERT INTO rules (name, disabled, user_id) VALUES ('r', false, $1) RETURNING id", b
        )
        await admin.execute(
            "INSERT INTO tracking_rules (rule_id, name) VALUES ($1, 'related-events')", rule
        )
        generation = await admin.fetchval(
            "INSERT INTO generation_rules (rule_id) VALUES ($1) RETURNING id", rule
        )
        await admin.execute(
            "INSERT INTO destinations (generation_rule_id, protocol, address) "
            "VALUES ($1, 'email', 'b@example.org')",
            generation,
        )
        yield {"admin": admin, "one": one, "two": two, "a": a, "b": b, "rule": rule}
    finally:
        for connection in (one, two):
            await connection.close()
        await admin.execute("DELETE FROM users WHERE name LIKE $1", f"%-{suffix}")
        await admin.close()


async def _waits_for_a_lock(admin: asyncpg.Connection, pid: int) -> None:
    """Until the backend `pid` waits for a lock (a generous bound: it is to wait at once)."""
    for _ in range(500):
        state = await admin.fetchval(
            "SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", pid
        )
        if state == "Lock":
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"backend {pid} does not wait for a lock")


# Writes to a rule's parts, and the version of the owner they must change.
PART_WRITES = [
    ('INSERT INTO generated (rule_id, "when", count) VALUES ($1, now(), 1)', "counts"),
    ("UPDATE tracking_rules SET params = 'null' WHERE rule_id = $1", "rules"),
    (
        "UPDATE destinations SET address = 'new@example.org' WHERE generation_rule_id IN "
        "(SELECT id FROM generation_rules WHERE rule_id = $1)",
        "rules",
    ),
    (
        "INSERT INTO filters (generation_rule_id, name, params) "
        "SELECT id, 'topic', '\"x\"' FROM generation_rules WHERE rule_id = $1",
        "rules",
    ),
]


MOVE = "UPDATE rules SET user_id = $1 WHERE id = $2"


async def _end(*transactions: Any) -> None:
    """Roll back those not committed (a test that failed half way)."""
    for transaction in transactions:
        with contextlib.suppress(asyncpg.InterfaceError):
            await transaction.rollback()


@pytest.mark.parametrize(("write", "version"), PART_WRITES)
async def test_a_rule_moving_waits_for_writes_to_its_parts(
    committed: dict[str, Any], write: str, version: str
) -> None:
    """A write to a rule's part maps it to the owner it has then: the rule moving to another
    user waits until that write commits, so no reader sees the rule with its new owner but
    without the write."""
    admin, one, two = committed["admin"], committed["one"], committed["two"]
    part = two.transaction()
    await part.start()
    await two.execute(write, committed["rule"])
    moving = one.transaction()
    await moving.start()
    move = asyncio.create_task(one.execute(MOVE, committed["a"], committed["rule"]))
    try:
        await _waits_for_a_lock(admin, one.get_server_pid())
        assert not move.done()
        await part.commit()
        await move
        await moving.commit()
    finally:
        move.cancel()
        await _end(part, moving)


@pytest.mark.parametrize(("write", "version"), PART_WRITES)
async def test_writes_to_a_moving_rule_wait_and_count_for_its_new_owner(
    committed: dict[str, Any], write: str, version: str
) -> None:
    """The other way round: a write to a part of a rule being moved waits for the move, then
    changes the new owner's version."""
    admin, one, two = committed["admin"], committed["one"], committed["two"]
    query = f"SELECT version FROM user_{version}_versions WHERE user_id = $1"
    moving = one.transaction()
    await moving.start()
    await one.execute(MOVE, committed["a"], committed["rule"])
    writing = two.transaction()
    await writing.start()
    part = asyncio.create_task(two.execute(write, committed["rule"]))
    try:
        await _waits_for_a_lock(admin, two.get_server_pid())
        assert not part.done()
        await moving.commit()
        await part
        moved = await admin.fetchval(query, committed["a"])
        await writing.commit()
        assert await admin.fetchval(query, committed["a"]) not in (None, moved)
    finally:
        part.cancel()
        await _end(moving, writing)


async def test_count_writers_take_users_in_any_order(committed: dict[str, Any]) -> None:
    """Two flushes counting the same two users' rules in opposite orders, a statement per row
    (as the consumer's flush does): the second waits for the first, no deadlock."""
    admin, one, two = committed["admin"], committed["one"], committed["two"]
    rule_of_a = await admin.fetchval(
        "INSERT INTO rules (name, disabled, user_id) VALUES ('r', false, $1) RETURNING id",
        committed["a"],
    )
    count = 'INSERT INTO generated (rule_id, "when", count) VALUES ($1, now(), 1)'
    first, second = one.transaction(), two.transaction()
    await first.start()
    await second.start()
    later = asyncio.create_task(asyncio.sleep(0))
    try:
        await one.execute(count, committed["rule"])
        later = asyncio.create_task(two.execute(count, rule_of_a))
        await _waits_for_a_lock(admin, two.get_server_pid())
        await one.execute(count, rule_of_a)
        await first.commit()
        await later
        await two.execute(count, committed["rule"])
        await second.commit()
    finally:
        later.cancel()
        await _end(first, second)

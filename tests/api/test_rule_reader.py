"""The one rule reader (fmn.rules.store.read_rules) on PostgreSQL and on SQLite (the embedded
default), and its readers agreeing: the consumer's index, the API's routes, the admin list and
`fmn rules export` see the same rules, a row without a tracking rule included."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fmn.core.settings import DatabaseSettings
from fmn.db import migrations, models
from fmn.db.session import make_engine
from fmn.rules import transfer
from fmn.rules.store import read_rules
from tests.factories import make_rule, make_user


@pytest.fixture
async def sqlite_session(tmp_path: Path) -> AsyncIterator[AsyncSession]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fmn.sqlite'}"
    await asyncio.to_thread(migrations.upgrade, url)
    engine = make_engine(DatabaseSettings(url=url))
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        yield session
    await engine.dispose()


async def arrange(session: AsyncSession) -> None:
    alice = await make_user(session, "alice")
    bob = await make_user(session, "bob")
    first = await make_rule(
        session,
        alice,
        name="parts",
        tracking="artifacts-followed",
        params=[{"name": "foo", "type": "rpms"}],
        destinations=[("email", "alice@example.org"), ("irc", "alice")],
        filters={"applications": ["koji"], "topic": "*.x", "severities": ["error"]},
    )
    extra = models.GenerationRule(rule_id=first.id)
    extra.destinations.append(models.Destination(protocol="matrix", address="@alice:fedora.im"))
    session.add(extra)
    await make_rule(session, alice, name=None, tracking="users-followed", params=["b"])
    await make_rule(session, bob, name="bobs", disabled=True)
    session.add(models.Generated(rule_id=first.id, count=3))
    await session.commit()
    session.expire_all()


def as_json(read: Any) -> list[dict[str, Any]]:
    return [stored.rule.model_dump(mode="json") for stored in read.rules]


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
async def test_the_reader_on_both_databases(
    database: str, session: AsyncSession, sqlite_session: AsyncSession
) -> None:
    db = session if database == "postgresql" else sqlite_session
    await arrange(db)
    read = await read_rules(db)
    assert read.total == 3
    parts = as_json(read)[0]
    assert parts["tracking_rule"] == {
        "name": "artifacts-followed",
        "params": [{"name": "foo", "type": "rpms"}],
    }
    assert parts["generated_last_week"] == 3
    assert [g["destinations"] for g in parts["generation_rules"]] == [
        [
            {"protocol": "email", "address": "alice@example.org"},
            {"protocol": "irc", "address": "alice"},
        ],
        [{"protocol": "matrix", "address": "@alice:fedora.im"}],
    ]
    first_filters = parts["generation_rules"][0]["filters"]
    assert (first_filters["applications"], first_filters["topic"]) == (["koji"], "*.x")
    assert first_filters["severities"] == ["error"]
    # Without counts (the consumer), the same rules.
    uncounted = as_json(await read_rules(db, counts=False))
    assert [r["generated_last_week"] for r in uncounted] == [0, 0, 0]
    assert [{**r, "generated_last_week": 0} for r in as_json(read)] == uncounted
    alices = await read_rules(db, username="alice", offset=1, limit=1)
    assert alices.total == 2 and [s.rule.name for s in alices.rules] == [None]
    disabled = await read_rules(db, disabled=True, limit=10)
    assert disabled.total == 1 and disabled.rules[0].rule.name == "bobs"
    enabled = await read_rules(db, enabled_only=True)
    assert [s.rule.name for s in enabled.rules] == ["parts", None]
    past_the_end = await read_rules(db, username="alice", offset=5, limit=5)
    assert past_the_end.rules == [] and past_the_end.total == 2
    one = await read_rules(db, username="bob", rule_id=read.rules[0].rule.id)
    assert one.rules == []


async def test_a_rule_without_a_tracking_rule_is_no_rule_for_any_reader(
    make_app: Any, auth: Any, session: AsyncSession
) -> None:
    """FMN 3 gives every rule exactly one tracking rule; only plain SQL makes a rule without
    one. The readers used to disagree on it (the consumer left it out, the API read it and
    failed the whole list); now none of them sees it, and the rest of the list stays usable."""
    alice = await make_user(session, "alice")
    kept = await make_rule(session, alice, name="kept")
    broken = await make_rule(session, alice, name="broken")
    await session.commit()
    kept_id, broken_id = kept.id, broken.id
    await session.execute(text("DELETE FROM tracking_rules WHERE rule_id = :r"), {"r": broken_id})
    await session.commit()
    session.expire_all()

    # The consumer's read, the export.
    assert [s.rule.id for s in (await read_rules(session, enabled_only=True)).rules] == [kept_id]
    assert [r["id"] for r in await transfer.export_rules(session, "alice")] == [kept_id]
    # The API: the list (and its total), one rule, the admin list, a change.
    http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=await make_app()), base_url="http://t"
    )
    listed = await http.get("/api/v1/users/alice/rules", headers=auth("alice"))
    assert listed.status_code == 200, listed.text
    assert [r["id"] for r in listed.json()] == [kept_id]
    assert listed.headers["x-total-count"] == "1"
    one = await http.get(f"/api/v1/users/alice/rules/{broken_id}", headers=auth("alice"))
    assert one.status_code == 404
    admin = await http.get("/api/v1/admin/rules?username=alice", headers=auth("root"))
    assert [r["id"] for r in admin.json()] == [kept_id]
    patched = await http.patch(
        f"/api/v1/admin/rules/{broken_id}", headers=auth("root"), json={"disabled": True}
    )
    assert patched.status_code == 404
    # `fmn rules import` of the rule with a tracking rule repairs it.
    exported = await transfer.export_rules(session, "alice")
    exported[0]["id"] = broken_id
    exported[0]["name"] = "repaired"
    exported[0]["generation_rules"][0]["id"] = None
    report = await transfer.import_rules(session, transfer.parse_rules(exported))
    await session.commit()
    assert report.updated == [broken_id]
    names = [s.rule.name for s in (await read_rules(session, username="alice")).rules]
    assert names == ["kept", "repaired"]

"""The one-statement rule reads give what fmn.rules.store gives, on PostgreSQL and on SQLite
(the embedded default)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fmn.api.rule_queries import read_rules
from fmn.core.settings import DatabaseSettings
from fmn.db import migrations, models
from fmn.db.session import make_engine
from fmn.rules.store import load_rules
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


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
async def test_reads_match_the_store(
    database: str, session: AsyncSession, sqlite_session: AsyncSession
) -> None:
    db = session if database == "postgresql" else sqlite_session
    await arrange(db)
    stored = [r.model_dump(mode="json") for r in await load_rules(db)]
    read, total = await read_rules(db, limit=10)
    assert total == 3
    assert [r.model_dump(mode="json", exclude={"muted_until"}) for r in read] == stored
    alices, total = await read_rules(db, username="alice", offset=1, limit=1)
    assert total == 2 and [r.name for r in alices] == [None]
    disabled, total = await read_rules(db, disabled=True, limit=10)
    assert total == 1 and disabled[0].name == "bobs"
    past_the_end, total = await read_rules(db, username="alice", offset=5, limit=5)
    assert past_the_end == [] and total == 2
    one, _ = await read_rules(db, username="bob", rule_id=read[0].id)
    assert one == []

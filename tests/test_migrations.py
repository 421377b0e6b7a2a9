"""Every migration runs up and down on PostgreSQL, and the models agree with the migrations."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from fmn.db import migrations
from fmn.db.models import Base
from tests.harness import services


def _tables(sync_conn) -> set[str]:  # type: ignore[no-untyped-def]
    return set(inspect(sync_conn).get_table_names())


async def _inspect(url: str, fn):  # type: ignore[no-untyped-def]
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(fn)
    finally:
        await engine.dispose()


def _diff(sync_conn) -> list:  # type: ignore[no-untyped-def]
    ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})
    return compare_metadata(ctx, Base.metadata)


def test_every_migration_up_and_down_and_models_agree() -> None:
    name = f"{services.pg_database_name()}_migrations"
    url = services.recreate_database(name)
    try:
        script = ScriptDirectory.from_config(migrations.alembic_config())
        revisions = [rev.revision for rev in reversed(list(script.walk_revisions()))]
        assert revisions, "no migrations found"
        # One step at a time up, then all the way down, then up again.
        for revision in revisions:
            migrations.upgrade(url, revision)
        assert asyncio.run(_inspect(url, _diff)) == []
        tables = asyncio.run(_inspect(url, _tables))
        assert {"users", "rules", "tracking_rules", "generation_rules", "filters"} <= tables
        for revision in reversed(revisions[:-1]):
            migrations.downgrade(revision, url)
        migrations.downgrade("base", url)
        assert asyncio.run(_inspect(url, _tables)) <= {"alembic_version"}
        migrations.upgrade(url)
    finally:
        services.drop_database(name)


def _sqlite(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA foreign_keys=ON")
    return db


def _new_rule(db: sqlite3.Connection, name: str) -> int:
    rule_id = db.execute("INSERT INTO rules (name, disabled, user_id) VALUES (?, 0, 1)", (name,))
    assert rule_id.lastrowid is not None
    db.execute(
        "INSERT INTO tracking_rules (rule_id, name) VALUES (?, 'related-events')",
        (rule_id.lastrowid,),
    )
    return rule_id.lastrowid


def test_rule_ids_are_never_reused_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fmn.sqlite'}"
    migrations.upgrade(url, "0003")
    with contextlib.closing(_sqlite(tmp_path / "fmn.sqlite")) as db:
        db.execute("INSERT INTO users (id, name) VALUES (1, 'alice')")
        kept, last = _new_rule(db, "kept"), _new_rule(db, "last")
    migrations.upgrade(url)
    with contextlib.closing(_sqlite(tmp_path / "fmn.sqlite")) as db:
        # The rebuild kept the rules and what refers to them.
        assert db.execute("SELECT count(*) FROM tracking_rules").fetchone() == (2,)
        db.execute("DELETE FROM rules WHERE id = ?", (last,))
        newer = _new_rule(db, "newer")
        assert newer > last and kept < last
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    migrations.downgrade("0003", url)
    with contextlib.closing(_sqlite(tmp_path / "fmn.sqlite")) as db:
        assert db.execute("SELECT name FROM rules ORDER BY id").fetchall() == [
            ("kept",),
            ("newer",),
        ]
        assert db.execute("SELECT count(*) FROM tracking_rules").fetchone() == (2,)

"""Every migration runs up and down on PostgreSQL, and the models agree with the migrations."""

from __future__ import annotations

import asyncio

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

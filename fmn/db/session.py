"""Engines and sessions. PostgreSQL (asyncpg) in production, SQLite (aiosqlite) embedded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, delete, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from fmn.core.settings import DatabaseSettings


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # SQLite ignores ON DELETE CASCADE unless asked.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(settings: DatabaseSettings) -> AsyncEngine:
    url = make_url(settings.url)
    kwargs: dict[str, object] = {"echo": settings.echo}
    if url.get_backend_name() == "postgresql":
        kwargs["pool_size"] = settings.pool_size
        kwargs["pool_pre_ping"] = True
    else:
        # SQLite has one writer at a time; the others wait for the lock. Python's 5 s wait was
        # too short for 60 concurrent creations on a loaded machine: a 500 instead of a wait.
        kwargs["connect_args"] = {"timeout": 30}
    engine = create_async_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def prune_in_batches(
    sessionmaker: async_sessionmaker[AsyncSession],
    id_column: Any,
    older: ColumnElement[bool],
    batch_size: int,
    dependents: Sequence[Any] = (),
) -> tuple[int, int]:
    """Delete the rows `older` selects, `batch_size` at a time, each batch in a transaction of
    its own: a day's backlog deleted in one statement would hold its row locks and the index
    pages of concurrent inserts for as long as it runs. `dependents` are foreign-key columns
    of other tables whose rows go first. Returns how many rows went and in how many batches."""
    table = id_column.table
    pruned = batches = 0
    while True:
        async with sessionmaker.begin() as session:
            ids = list(
                (await session.execute(select(id_column).where(older).limit(batch_size))).scalars()
            )
            if not ids:
                return pruned, batches
            for column in dependents:
                await session.execute(delete(column.table).where(column.in_(ids)))
            await session.execute(delete(table).where(id_column.in_(ids)))
        pruned += len(ids)
        batches += 1
        if len(ids) < batch_size:
            return pruned, batches

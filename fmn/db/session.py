"""Engines and sessions. PostgreSQL (asyncpg) in production, SQLite (aiosqlite) embedded."""

from __future__ import annotations

from sqlalchemy import event
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

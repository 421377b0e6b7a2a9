"""Alembic environment: runs migrations on the configured database, or on a connection the caller
passes in ``config.attributes["connection"]`` (tests)."""

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from fmn.core.settings import get_settings
from fmn.db.models import Base
from fmn.db.session import make_engine

config = context.config
target_metadata = Base.metadata


def run_with_connection(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # A table rebuilt on SQLite is dropped and created again: with foreign keys on, the
        # drop would cascade to every row that refers to it. Off for the migration (SQLite
        # ignores this inside a transaction, so it comes first), checked after.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"foreign keys broken by the migration: {broken[:5]}")
    if sqlite:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")


async def run_async() -> None:
    url = config.attributes.get("database_url")
    settings = get_settings().database
    if url:
        settings = settings.model_copy(update={"url": url})
    engine = make_engine(settings)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(run_with_connection)
            await connection.commit()
    finally:
        await engine.dispose()


def run_offline() -> None:
    context.configure(
        url=config.attributes.get("database_url") or get_settings().database.url,
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
elif (conn := config.attributes.get("connection")) is not None:
    run_with_connection(conn)
else:
    asyncio.run(run_async())

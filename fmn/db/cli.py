"""`fmn db`: create, upgrade and inspect the database."""

from __future__ import annotations

import asyncio

import click
from sqlalchemy.exc import DBAPIError, OperationalError

from fmn.core.commands import settings_or_fail
from fmn.db import migrations


def _fail_unreachable(exc: Exception, url: str) -> click.ClickException:
    reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
    return click.ClickException(f"database {url!r} is unreachable: {reason}")


@click.group()
def db() -> None:
    """Create, upgrade and inspect the database."""


@db.command()
@click.option("--revision", default="head", show_default=True)
def upgrade(revision: str) -> None:
    """Create the database schema, or upgrade it to REVISION."""
    settings = settings_or_fail()
    try:
        migrations.upgrade(settings.database.url, revision)
    except (OperationalError, DBAPIError, OSError) as exc:
        raise _fail_unreachable(exc, settings.database.url) from None
    click.echo(f"database at revision {revision}")


@db.command()
@click.argument("revision")
def downgrade(revision: str) -> None:
    """Downgrade the database schema to REVISION."""
    settings = settings_or_fail()
    try:
        migrations.downgrade(revision, settings.database.url)
    except (OperationalError, DBAPIError, OSError) as exc:
        raise _fail_unreachable(exc, settings.database.url) from None


@db.command()
def current() -> None:
    """Print the database's revision and the code's."""
    from fmn.db.session import make_engine

    settings = settings_or_fail()

    async def read() -> str | None:
        engine = make_engine(settings.database)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(migrations.current_revision)
        finally:
            await engine.dispose()

    try:
        rev = asyncio.run(read())
    except (OperationalError, DBAPIError, OSError) as exc:
        raise _fail_unreachable(exc, settings.database.url) from None
    click.echo(f"database: {rev or '(empty)'}; code: {migrations.head_revision()}")

"""`fmn rules export|import` and `fmn import-fmn3`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TextIO

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from fmn.core.commands import settings_or_fail
from fmn.core.settings import Settings
from fmn.db.session import make_engine, make_sessionmaker
from fmn.rules import transfer


def _run(coro):  # type: ignore[no-untyped-def]
    """Run a coroutine, turning import and database errors into one clear error and exit 1."""
    try:
        return asyncio.run(coro)
    except transfer.RuleImportError as exc:
        raise click.ClickException(f"nothing imported:\n{exc}") from None
    except (OperationalError, DBAPIError, OSError) as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise click.ClickException(f"database error: {reason}") from None


@contextlib.asynccontextmanager
async def _transaction(settings: Settings) -> AsyncIterator[AsyncSession]:
    """A session in a transaction on the configured database, for one command."""
    engine = make_engine(settings.database)
    try:
        async with make_sessionmaker(engine).begin() as session:
            yield session
    finally:
        await engine.dispose()


@click.group()
def rules() -> None:
    """Rules in and out, in FMN 3's API JSON shape."""


@rules.command("export")
@click.option("--user", "username", help="Only this user's rules.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path))
def export_cmd(username: str | None, output: Path | None) -> None:
    """Write rules as a JSON list, as GET /api/v1/users/{u}/rules returns them."""
    settings = settings_or_fail()

    async def run() -> list[dict]:  # type: ignore[type-arg]
        async with _transaction(settings) as session:
            return await transfer.export_rules(session, username)

    data = json.dumps(_run(run()), indent=2)
    if output:
        output.write_text(data + "\n")
    else:
        click.echo(data)


@rules.command("import")
@click.argument("file", type=click.File("r"))
def import_cmd(file: TextIO) -> None:
    """Import a JSON list of rules (all or nothing), keeping their ids."""
    settings = settings_or_fail()
    try:
        parsed = transfer.parse_rules_file(file.read())
    except transfer.RuleImportError as exc:
        raise click.ClickException(f"nothing imported:\n{exc}") from None

    async def run() -> transfer.ImportReport:
        async with _transaction(settings) as session:
            return await transfer.import_rules(session, parsed)

    click.echo(f"rules: {_run(run())}")


def _async_url(url: str) -> str:
    """Accept plain FMN 3 URLs (postgresql://, sqlite://) and use the async drivers."""
    parsed = make_url(url)
    driver = {"postgresql": "postgresql+asyncpg", "sqlite": "sqlite+aiosqlite"}
    backend = parsed.get_backend_name()
    if backend not in driver:
        raise click.ClickException(f"unsupported database {url!r}: use PostgreSQL or SQLite")
    return parsed.set(drivername=driver[backend]).render_as_string(hide_password=False)


@click.command("import-fmn3")
@click.option("--from", "source", required=True, help="The FMN 3 database URL.")
def import_fmn3(source: str) -> None:
    """Import the users and rules of an FMN 3 database; running it twice changes nothing."""
    settings = settings_or_fail()

    async def run() -> tuple[int, transfer.ImportReport]:
        source_engine = create_async_engine(_async_url(source))
        try:
            async with source_engine.connect() as conn:
                raw = await transfer.read_fmn3_rules(conn)
                users = await transfer.fmn3_users(conn)
        finally:
            await source_engine.dispose()
        parsed = transfer.parse_rules(raw)
        async with _transaction(settings) as session:
            created_users = await transfer.import_users(session, users)
            return created_users, await transfer.import_rules(session, parsed)

    created_users, report = _run(run())
    click.echo(f"users: {created_users} created; rules: {report}", file=sys.stdout)

"""`fmn directory ...`: the local directory server; look-ups through the configured directory."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click

from fmn.directory.local import DirectoryData


@click.group()
def directory() -> None:
    """The directory: users, groups and who owns which package."""


@directory.command()
@click.option(
    "--file",
    "path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A DIRECTORY.json file (users, groups, projects).",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8081, show_default=True, type=int)
@click.option("--admin", is_flag=True, help="Serve the /_admin endpoints (fault switch, data).")
def serve(path: Path, host: str, port: int, admin: bool) -> None:
    """Serve FASJSON's and Pagure's APIs from a directory file."""
    import uvicorn

    from fmn.directory.server import make_app

    try:
        data = DirectoryData.from_file(path)
    except (ValueError, OSError) as exc:
        raise click.ClickException(f"{path}: {exc}") from None
    uvicorn.run(make_app(data, admin=admin), host=host, port=port, log_level="info")


LOOKUPS = (
    "get_user",
    "get_user_groups",
    "get_group_members",
    "search_users",
    "get_project_users",
    "get_project_groups",
    "get_user_projects",
    "get_group_projects",
    "search_projects",
)


@directory.command()
@click.argument("lookup", type=click.Choice(LOOKUPS))
@click.argument("argument")
def lookup(lookup: str, argument: str) -> None:
    """Ask the configured directory one question, e.g. `get_project_users rpms/firefox`."""
    from fmn.core.commands import settings_or_fail
    from fmn.directory.base import DirectoryUnavailable
    from fmn.directory.factory import close_directory, make_directory

    async def ask() -> Any:
        directory = make_directory(settings_or_fail())
        try:
            return await getattr(directory, lookup)(argument)
        finally:
            await close_directory(directory)

    try:
        answer = asyncio.run(ask())
    except DirectoryUnavailable as exc:
        raise click.ClickException(f"directory unavailable: {exc}") from None
    click.echo(json.dumps(answer, indent=2, sort_keys=True))

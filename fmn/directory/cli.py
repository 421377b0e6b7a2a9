"""`fmn directory lookup`: look-ups through the configured directory."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import click


@click.group()
def directory() -> None:
    """The directory: users, groups and who owns which package."""


LOOKUPS = (
    "get_user",
    "get_user_groups",
    "get_group_members",
    "get_group_sponsors",
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

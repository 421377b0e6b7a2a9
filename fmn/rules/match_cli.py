"""`fmn match`: run rules over recorded bus messages, offline, with the consumer's engine."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import click

from fmn.directory.base import Directory, DirectoryUnavailable
from fmn.directory.local import LocalDirectory
from fmn.rules.index import RuleIndex
from fmn.rules.match import MessageResult, match_one
from fmn.rules.schema import Rule


def _one_line(problem: str) -> str:
    lines = [line for line in str(problem).splitlines() if line.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else "unknown problem"
    return f"{lines[0]} (and {len(lines) - 1} more problems)"


def load_rules(file: TextIO) -> list[Rule]:
    from fmn.rules.transfer import RuleImportError, parse_rules_file

    try:
        return parse_rules_file(file.read())
    except RuleImportError as exc:
        raise click.ClickException(f"{file.name}: {_one_line(str(exc))}") from None


def _configured_directory() -> Directory:
    from fmn.core.commands import settings_or_fail

    settings = settings_or_fail()
    try:
        from fmn.directory.factory import make_directory
    except ImportError:  # TODO: drop once fmn.directory.factory (HTTP clients) is in the tree
        if settings.directory.local_file:
            return LocalDirectory.from_file(settings.directory.local_file)
        raise click.ClickException(
            "no directory: pass --directory DIRECTORY.json or set directory.local_file "
            "(the FASJSON/dist-git clients are not installed)"
        ) from None
    try:
        directory: Directory = make_directory(settings)
    except (OSError, ValueError) as exc:  # e.g. an unreadable directory.local_file
        raise click.ClickException(f"the configured directory: {_one_line(str(exc))}") from None
    return directory


def _directory(path: Path | None) -> Directory:
    if path is None:
        return _configured_directory()
    try:
        return LocalDirectory.from_file(path)
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"{path}: {_one_line(str(exc))}") from None


async def _build(rules: list[Rule], directory: Directory) -> RuleIndex:
    index = RuleIndex(directory)
    try:
        await index.build(rules)
    except DirectoryUnavailable as exc:
        raise click.ClickException(f"the directory is unavailable: {exc}") from None
    finally:
        close = getattr(directory, "aclose", None)
        if close is not None:
            await close()
    return index


def _results(index: RuleIndex, messages: TextIO) -> Iterator[MessageResult]:
    for number, line in enumerate(messages, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError as exc:
            yield MessageResult(message_id=None, error=f"line {number}: not JSON: {exc}")
            continue
        yield match_one(index, data)


@click.command("match")
@click.option(
    "--rules",
    "rules_file",
    required=True,
    type=click.File(encoding="utf-8"),
    help="JSON list of rules in FMN 3's API shape (as `fmn rules export` writes).",
)
@click.option(
    "--messages",
    "messages_file",
    required=True,
    type=click.File(encoding="utf-8"),
    help="fedora-messaging serialized messages, one JSON object a line ('-' for stdin).",
)
@click.option(
    "--directory",
    "directory_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A DIRECTORY.json file (users, groups, projects); default: the configured directory.",
)
def match(rules_file: TextIO, messages_file: TextIO, directory_path: Path | None) -> None:
    """Print, for each message, the notifications the rules would send: one JSON line
    {"message_id", "notifications": [{"protocol", "address", "rules"}]}, plus "error" for a
    line that is not a message."""
    rules = load_rules(rules_file)
    index = asyncio.run(_build(rules, _directory(directory_path)))
    for result in _results(index, messages_file):
        click.echo(json.dumps(result.to_json(), ensure_ascii=False))

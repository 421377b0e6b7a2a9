"""`fmn sender email|irc|matrix|web` and `fmn deadletter list|replay|discard`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from fmn.core.commands import settings_or_fail, signed_settings_or_fail
from fmn.core.settings import ConfigError
from fmn.sendqueue import deadletters
from fmn.sendqueue.workitem import PROTOCOLS
from fmn.transport.base import Broker

T = TypeVar("T")


@click.command()
@click.argument("protocol", type=click.Choice(PROTOCOLS))
def sender(protocol: str) -> None:
    """Deliver the notifications of one protocol (email may run several instances)."""
    from fmn.senders.service import check_cleartext_credentials, run_sender_process

    settings = signed_settings_or_fail()
    try:
        check_cleartext_credentials(protocol, settings)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    run_sender_process(protocol, settings)


@click.group()
def deadletter() -> None:
    """Notifications the senders gave up on."""


def _with_broker(action: Callable[[Broker, str], Awaitable[T]]) -> T:
    settings = settings_or_fail()

    async def main() -> T:
        broker = await deadletters.open_broker(settings.send_queue)
        try:
            return await action(broker, settings.send_queue.exchange)
        finally:
            await broker.close()

    return asyncio.run(main())


_protocol_option = click.option(
    "--protocol", type=click.Choice(PROTOCOLS), default=None, help="Only this protocol."
)


@deadletter.command("list")
@_protocol_option
@click.option("--limit", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_(protocol: str | None, limit: int, as_json: bool) -> None:
    """List dead letters with the reason each was given up on."""
    letters = _with_broker(
        lambda b, ex: deadletters.list_dead_letters(b, ex, protocol, limit=limit)
    )
    for letter in letters:
        info = letter.as_dict()
        if as_json:
            click.echo(json.dumps(info))
        else:
            who = info["address"] or "?"
            click.echo(
                f"{info['id']}  {info['protocol']:6}  {who}  attempts={info['attempts']}  "
                f"{info['failed_at']}\n    {info['reason']}\n    {info['summary'] or ''}"
            )
    if not as_json:
        click.echo(f"{len(letters)} dead letter(s)")


def _settle(
    verb: str,
    action: Callable[[Broker, str, str | None, set[str] | None], Awaitable[int]],
    protocol: str | None,
    all_: bool,
    ids: tuple[str, ...],
) -> None:
    if not ids and not all_:
        raise click.UsageError("name dead-letter ids, or --all")
    wanted = None if all_ else set(ids)
    n = _with_broker(lambda b, ex: action(b, ex, protocol, wanted))
    click.echo(f"{verb} {n}")


_all_option = click.option("--all", "all_", is_flag=True, help="Every dead letter.")


@deadletter.command()
@_protocol_option
@_all_option
@click.argument("ids", nargs=-1)
def replay(protocol: str | None, all_: bool, ids: tuple[str, ...]) -> None:
    """Send dead letters back to their sender, with fresh retries."""
    _settle("replayed", deadletters.replay_dead_letters, protocol, all_, ids)


@deadletter.command()
@_protocol_option
@_all_option
@click.argument("ids", nargs=-1)
def discard(protocol: str | None, all_: bool, ids: tuple[str, ...]) -> None:
    """Delete dead letters for good."""
    _settle("discarded", deadletters.discard_dead_letters, protocol, all_, ids)

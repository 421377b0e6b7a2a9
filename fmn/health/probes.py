"""Checks, how probes run, and the probes of the parts every reporter sees alike (the
database with its schema, the send queues). See fmn.health."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import text

from fmn.core.settings import SendQueueSettings
from fmn.db.migrations import current_revision, head_revision
from fmn.sendqueue.topology import dead_letter_queue, retry_queue, send_queue
from fmn.sendqueue.workitem import PROTOCOLS

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

State = Literal["ok", "warn", "down", "skip"]


@dataclass(frozen=True)
class Check:
    name: str
    state: State
    detail: str = ""

    @property
    def ok(self) -> bool:
        """Up, possibly with a warning (dead letters), or not looked at."""
        return self.state != "down"


Probe = Callable[[], Awaitable[list[Check]]]


def error_text(exc: BaseException) -> str:
    """The exception's type and first line, short enough for a status line."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


def safe_url(url: str) -> str:
    """The URL without its password, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


async def run_probe(name: str, probe: Probe, limit: float) -> list[Check]:
    """The probe's checks; one `down` check named `name` when it raises or takes longer than
    `limit` seconds."""
    task = asyncio.ensure_future(probe())
    await asyncio.wait({task}, timeout=limit)
    if task.done():
        if task.cancelled():
            return [Check(name, "down", "cancelled")]
        exc = task.exception()
        return [Check(name, "down", error_text(exc))] if exc is not None else task.result()
    # Not wait_for: it waits for the cancelled probe, and a client stuck in its clean-up would
    # hold the whole report. The probe gets a second to go, then is left behind.
    task.cancel()
    await asyncio.wait({task}, timeout=1.0)
    return [Check(name, "down", f"no answer within {limit:g}s")]


async def run_probes(
    probes: Mapping[str, Probe], limit: float, skip: Collection[str] = ()
) -> list[Check]:
    """Every probe at once, their checks in the order of `probes`."""

    async def one(name: str) -> list[Check]:
        if name in skip:
            return [Check(name, "skip", "skipped (--skip)")]
        return await run_probe(name, probes[name], limit)

    results = await asyncio.gather(*(one(name) for name in probes))
    return [check for group in results for check in group]


def detail_probe(name: str, ask: Callable[[], Awaitable[str | None]]) -> Probe:
    """A probe of one check that is up when `ask` returns (its answer is the detail)."""

    async def probe() -> list[Check]:
        return [Check(name, "ok", await ask() or "")]

    return probe


# ---- the parts every reporter sees alike -------------------------------------------------------


async def database_checks(
    connect: Callable[[], AbstractAsyncContextManager[AsyncConnection]], shown: str = ""
) -> list[Check]:
    """`database` (it answers) and `migrations` (its schema is the code's)."""
    prefix = f"{shown}: " if shown else ""
    try:
        async with connect() as conn:
            await conn.execute(text("SELECT 1"))
            current = await conn.run_sync(current_revision)
    except Exception as exc:
        return [
            Check("database", "down", f"{prefix}{error_text(exc)}"),
            Check("migrations", "down", "no database"),
        ]
    head = head_revision()
    if current == head:
        migrations = Check("migrations", "ok", f"at {head}")
    else:
        found = f"at {current}" if current else "empty"
        migrations = Check(
            "migrations", "down", f"{found}, the code expects {head}: run `fmn db upgrade`"
        )
    return [Check("database", "ok", shown), migrations]


QueueSize = Callable[[str], Awaitable["int | None"]]


def count_text(n: int | None, what: str) -> str:
    return f"no {what} queue yet" if n is None else f"{n} {what}"


async def send_queue_checks(
    size: QueueSize, send: SendQueueSettings, *, retries: bool = True
) -> list[Check]:
    """`send <protocol>` for each protocol: items waiting, retrying (unless `retries` is
    false: a process that did not declare the retry queues must not ask for them) and dead (a
    warning). `size` answers a queue's ready messages, None when it is not declared (yet)."""
    checks = []
    for protocol in PROTOCOLS:
        parts = [count_text(await size(send_queue(send.exchange, protocol)), "waiting")]
        if retries:
            retrying = [
                await size(retry_queue(send.exchange, protocol, attempt))
                for attempt in range(len(send.retry_delays))
            ]
            parts.append(f"{sum(n or 0 for n in retrying)} retrying")
        dead = await size(dead_letter_queue(send.exchange, protocol))
        parts.append(count_text(dead, "dead"))
        checks.append(Check(f"send {protocol}", "warn" if dead else "ok", ", ".join(parts)))
    return checks

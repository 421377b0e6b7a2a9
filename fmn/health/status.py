"""`fmn status`: the health of every part the settings point at, from outside the processes.
Its imports are at the top, not in the probes: a probe's time limit measures the part it asks,
not how long a busy machine takes to import a client library.

Each probe connects the way the processes do (the database and its schema, the cache, the bus
and send brokers with the depth of their queues, the directory's services, the API's readiness)
and reports; none raises. Parts on the embedded default (in-process broker or cache) cannot be
seen from another process and are skipped. The exit code is 1 when any part is down, so the
command serves monitoring scripts and init containers as well as people.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import click
import httpx
import redis.asyncio as aioredis
from sqlalchemy.engine import make_url

import fmn.transport.amqp  # noqa: F401 - aio-pika, loaded before any probe's clock starts
from fmn.core.settings import BusSettings, SendQueueSettings, Settings
from fmn.db.session import make_engine
from fmn.directory.factory import make_remote_directory, uses_local_file
from fmn.directory.local import DirectoryData
from fmn.health.probes import (
    Check,
    Probe,
    State,
    count_text,
    database_checks,
    error_text,
    run_probes,
    safe_url,
    send_queue_checks,
)
from fmn.transport import Broker, make_broker

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["Check", "gather_status", "safe_url", "status"]

PARTS = ("database", "cache", "bus", "send", "directory", "api")
# Looked up to prove the directory answers; "no such user/project" is an answer too.
PROBE_NAME = "fmn-status-probe"


# ---- database ---------------------------------------------------------------------------------


async def settings_database_checks(settings: Settings) -> list[Check]:
    url = make_url(settings.database.url)
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        # Connecting would create an empty file: a missing one is a finding, not a side effect.
        if not await asyncio.to_thread(Path(url.database).is_file):
            return [
                Check("database", "down", f"{shown}: no such file"),
                Check("migrations", "down", "no database"),
            ]
    engine = make_engine(settings.database)

    @asynccontextmanager
    async def connect() -> AsyncIterator[AsyncConnection]:
        async with engine.connect() as conn:
            yield conn

    try:
        return await database_checks(connect, shown)
    finally:
        await engine.dispose()


# ---- cache ------------------------------------------------------------------------------------


async def cache_check(name: str, url: str) -> Check:
    if url.startswith("mem://"):
        return Check(name, "skip", "in-process (embedded default): nothing to reach")
    # cashews options ride in the query string; redis-py would refuse them.
    client = aioredis.from_url(urlunsplit(urlsplit(url)._replace(query="")))
    try:
        await client.ping()
        keys = await client.dbsize()
    except Exception as exc:
        return Check(name, "down", f"{safe_url(url)}: {error_text(exc)}")
    finally:
        await client.aclose()
    return Check(name, "ok", f"{safe_url(url)}: {keys} keys")


# ---- brokers ----------------------------------------------------------------------------------


class QueueReader:
    """Queue depths through one connection. Asking for a queue that does not exist closes the
    AMQP channel, so after a failed read the connection is made anew."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.broker: Broker | None = None

    async def open(self) -> None:
        self.broker = make_broker(self.urls, "fmn status")
        await self.broker.connect()

    async def close(self) -> None:
        if self.broker is not None:
            await self.broker.close()
            self.broker = None

    async def size(self, queue: str) -> int | None:
        """Messages ready in the queue; None when it is not declared (yet)."""
        assert self.broker is not None
        try:
            return await self.broker.queue_size(queue)
        except Exception:
            await self.close()
            await self.open()  # still failing here means the broker itself is down
            return None


async def _queue_checks(
    name: str, urls: list[str], read: Callable[[QueueReader], Awaitable[list[Check]]]
) -> list[Check]:
    """`read`'s checks through a reader of the broker at `urls`; `name` down when it fails."""
    if urls[0].startswith("memory://"):
        return [Check(name, "skip", "in-process broker (embedded default)")]
    reader = QueueReader(urls)
    try:
        await reader.open()
        return await read(reader)
    except Exception as exc:
        where = ", ".join(safe_url(url) for url in urls)
        return [Check(name, "down", f"{where}: {error_text(exc)}")]
    finally:
        await reader.close()


async def bus_check(bus: BusSettings) -> list[Check]:
    async def read(reader: QueueReader) -> list[Check]:
        ready = await reader.size(bus.queue)
        rejected = await reader.size(f"{bus.queue}.rejected")
        counts = f"{count_text(ready, 'waiting')}, {count_text(rejected, 'rejected')}"
        return [Check("bus", "warn" if rejected else "ok", f"queue {bus.queue}: {counts}")]

    return await _queue_checks("bus", bus.broker_urls, read)


async def send_checks(send: SendQueueSettings) -> list[Check]:
    async def read(reader: QueueReader) -> list[Check]:
        checks = await send_queue_checks(reader.size, send)
        hint = " (see `fmn deadletter list --protocol {}`)"
        return [
            Check(c.name, c.state, c.detail + hint.format(c.name.removeprefix("send ")))
            if c.state == "warn"
            else c
            for c in checks
        ]

    return await _queue_checks("send", send.broker_urls, read)


# ---- directory and API ------------------------------------------------------------------------


async def directory_checks(settings: Settings, http_timeout: float) -> list[Check]:
    directory = settings.directory
    if uses_local_file(directory):
        assert directory.local_file is not None
        try:
            data = DirectoryData.from_file(directory.local_file)
        except (OSError, ValueError) as exc:
            return [Check("directory", "down", f"{directory.local_file}: {error_text(exc)}")]
        counts = f"{len(data.users)} users, {len(data.groups)} groups"
        return [Check("directory", "ok", f"local file {directory.local_file}: {counts}")]
    # One try each, within the time the status has: this is a probe, not a look-up to save.
    quick = directory.model_copy(
        update={"retries": 0, "timeout": min(directory.timeout, http_timeout)}
    )
    remote = make_remote_directory(quick)

    async def probe(name: str, url: str, ask: Callable[[], Awaitable[object]]) -> Check:
        try:
            await ask()
        except Exception as exc:
            return Check(name, "down", f"{url}: {error_text(exc)}")
        return Check(name, "ok", f"{url}: answers")

    try:
        return list(
            await asyncio.gather(
                probe("fasjson", directory.fasjson_url, lambda: remote.get_user(PROBE_NAME)),
                probe(
                    "dist-git",
                    directory.distgit_url,
                    lambda: remote.get_project_users(f"rpms/{PROBE_NAME}"),
                ),
            )
        )
    finally:
        await remote.aclose()


async def api_check(url: str, http_timeout: float) -> Check:
    try:
        async with httpx.AsyncClient(timeout=http_timeout) as client:
            response = await client.get(url)
    except httpx.HTTPError as exc:
        return Check("api", "down", f"{url}: {error_text(exc)}")
    try:
        detail = str(response.json().get("detail", ""))
    except ValueError:
        detail = response.text[:200]
    state: State = "ok" if response.status_code == 200 else "down"
    return Check("api", state, f"{url}: {response.status_code} {detail}".strip())


# ---- all together -----------------------------------------------------------------------------


def default_api_url(settings: Settings) -> str:
    return f"{settings.public_url.rstrip('/')}/api/v1/healthz/ready"


async def gather_status(
    settings: Settings,
    *,
    api_url: str | None = None,
    skip: Sequence[str] = (),
    limit: float = 10.0,
) -> list[Check]:
    """Every check, run at once, each within `limit` seconds."""

    async def cache() -> list[Check]:
        checks = [await cache_check("cache", settings.cache.url)]
        state_url = settings.senders.state_url
        if state_url and state_url != settings.cache.url:
            checks.append(await cache_check("sender state", state_url))
        return checks

    async def api() -> list[Check]:
        return [await api_check(api_url or default_api_url(settings), limit)]

    probes: dict[str, Probe] = {
        "database": lambda: settings_database_checks(settings),
        "cache": cache,
        "bus": lambda: bus_check(settings.bus),
        "send": lambda: send_checks(settings.send_queue),
        "directory": lambda: directory_checks(settings, limit),
        "api": api,
    }
    return await run_probes(probes, limit, skip)


STYLE = {"ok": "green", "warn": "yellow", "down": "red", "skip": "bright_black"}


def print_report(checks: Sequence[Check]) -> None:
    width = max(len(c.name) for c in checks)
    for check in checks:
        state = click.style(f"{check.state.upper():4}", fg=STYLE[check.state], bold=True)
        click.echo(f"{check.name:{width}}  {state}  {check.detail}")


@click.command()
@click.option(
    "--api-url",
    default=None,
    help="The API's readiness URL [default: public_url + /api/v1/healthz/ready].",
)
@click.option(
    "--skip", multiple=True, type=click.Choice(PARTS), help="Leave a part out (repeatable)."
)
@click.option("--timeout", default=10.0, show_default=True, help="Seconds each part may take.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of a table.")
def status(api_url: str | None, skip: tuple[str, ...], timeout: float, as_json: bool) -> None:
    """Check every part the configuration points at; exit 1 when one is down."""
    from fmn.core.commands import settings_or_fail

    # The report says what failed; the clients' own retry warnings would only repeat it.
    for noisy in ("alembic", "fmn.directory"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    settings = settings_or_fail()
    loop = asyncio.new_event_loop()
    try:
        checks = loop.run_until_complete(
            gather_status(settings, api_url=api_url, skip=skip, limit=timeout)
        )
    finally:
        # Unlike asyncio.run, no wait for probes left behind past their limit.
        loop.close()
    down = [c for c in checks if c.state == "down"]
    if as_json:
        click.echo(json.dumps({"ok": not down, "checks": [asdict(c) for c in checks]}))
    else:
        print_report(checks)
    if down:
        raise SystemExit(1)

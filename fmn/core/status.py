"""`fmn status`: the health of every part the settings point at, from outside the processes.

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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import click

from fmn.core.settings import BusSettings, SendQueueSettings, Settings
from fmn.sendqueue.topology import dead_letter_queue, retry_queue, send_queue
from fmn.sendqueue.workitem import PROTOCOLS
from fmn.transport import Broker, make_broker

State = Literal["ok", "warn", "down", "skip"]
PARTS = ("database", "cache", "bus", "send", "directory", "api")
# Looked up to prove the directory answers; "no such user/project" is an answer too.
PROBE_NAME = "fmn-status-probe"


@dataclass(frozen=True)
class Check:
    name: str
    state: State
    detail: str = ""


def safe_url(url: str) -> str:
    """The URL without its password, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


# ---- database ---------------------------------------------------------------------------------


async def database_checks(settings: Settings) -> list[Check]:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from fmn.db.migrations import current_revision, head_revision
    from fmn.db.session import make_engine

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
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            current = await conn.run_sync(current_revision)
    except Exception as exc:
        return [
            Check("database", "down", f"{shown}: {_error(exc)}"),
            Check("migrations", "down", "no database"),
        ]
    finally:
        await engine.dispose()
    head = head_revision()
    if current == head:
        migrations = Check("migrations", "ok", f"at {head}")
    else:
        found = f"at {current}" if current else "empty"
        migrations = Check(
            "migrations", "down", f"{found}, the code expects {head}: run `fmn db upgrade`"
        )
    return [Check("database", "ok", shown), migrations]


# ---- cache ------------------------------------------------------------------------------------


async def cache_check(name: str, url: str) -> Check:
    if url.startswith("mem://"):
        return Check(name, "skip", "in-process (embedded default): nothing to reach")
    import redis.asyncio as aioredis

    # cashews options ride in the query string; redis-py would refuse them.
    client = aioredis.from_url(urlunsplit(urlsplit(url)._replace(query="")))
    try:
        await client.ping()
        keys = await client.dbsize()
    except Exception as exc:
        return Check(name, "down", f"{safe_url(url)}: {_error(exc)}")
    finally:
        await client.aclose()
    return Check(name, "ok", f"{safe_url(url)}: {keys} keys")


# ---- brokers ----------------------------------------------------------------------------------


class QueueReader:
    """Queue depths through one connection. Asking for a queue that does not exist closes the
    AMQP channel, so after a failed read the connection is made anew."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.broker: Broker | None = None

    async def open(self) -> None:
        self.broker = make_broker(self.url, "fmn status")
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


def _count(n: int | None, what: str) -> str:
    return f"no {what} queue yet" if n is None else f"{n} {what}"


async def bus_check(bus: BusSettings) -> list[Check]:
    if bus.amqp_url.startswith("memory://"):
        return [Check("bus", "skip", "in-process broker (embedded default)")]
    reader = QueueReader(bus.amqp_url)
    try:
        await reader.open()
        ready = await reader.size(bus.queue)
        rejected = await reader.size(f"{bus.queue}.rejected")
    except Exception as exc:
        return [Check("bus", "down", f"{safe_url(bus.amqp_url)}: {_error(exc)}")]
    finally:
        await reader.close()
    detail = f"queue {bus.queue}: {_count(ready, 'waiting')}, {_count(rejected, 'rejected')}"
    return [Check("bus", "warn" if rejected else "ok", detail)]


async def send_checks(send: SendQueueSettings) -> list[Check]:
    if send.amqp_url.startswith("memory://"):
        return [Check("send", "skip", "in-process broker (embedded default)")]
    reader = QueueReader(send.amqp_url)
    checks = []
    try:
        await reader.open()
        for protocol in PROTOCOLS:
            waiting = await reader.size(send_queue(send.exchange, protocol))
            retrying = [
                await reader.size(retry_queue(send.exchange, protocol, attempt))
                for attempt in range(len(send.retry_delays))
            ]
            dead = await reader.size(dead_letter_queue(send.exchange, protocol))
            detail = ", ".join(
                (
                    _count(waiting, "waiting"),
                    f"{sum(n or 0 for n in retrying)} retrying",
                    _count(dead, "dead"),
                )
            )
            if dead:
                detail += f" (see `fmn deadletter list --protocol {protocol}`)"
            checks.append(Check(f"send {protocol}", "warn" if dead else "ok", detail))
    except Exception as exc:
        return [Check("send", "down", f"{safe_url(send.amqp_url)}: {_error(exc)}")]
    finally:
        await reader.close()
    return checks


# ---- directory and API ------------------------------------------------------------------------


async def directory_checks(settings: Settings, http_timeout: float) -> list[Check]:
    from fmn.directory.factory import make_remote_directory, uses_local_file
    from fmn.directory.local import DirectoryData

    directory = settings.directory
    if uses_local_file(directory):
        assert directory.local_file is not None
        try:
            data = DirectoryData.from_file(directory.local_file)
        except (OSError, ValueError) as exc:
            return [Check("directory", "down", f"{directory.local_file}: {_error(exc)}")]
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
            return Check(name, "down", f"{url}: {_error(exc)}")
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
    import httpx

    try:
        async with httpx.AsyncClient(timeout=http_timeout) as client:
            response = await client.get(url)
    except httpx.HTTPError as exc:
        return Check("api", "down", f"{url}: {_error(exc)}")
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
    probes: dict[str, Callable[[], Awaitable[list[Check]]]] = {}

    async def cache() -> list[Check]:
        checks = [await cache_check("cache", settings.cache.url)]
        state_url = settings.senders.state_url
        if state_url and state_url != settings.cache.url:
            checks.append(await cache_check("sender state", state_url))
        return checks

    async def api() -> list[Check]:
        return [await api_check(api_url or default_api_url(settings), limit)]

    probes["database"] = lambda: database_checks(settings)
    probes["cache"] = cache
    probes["bus"] = lambda: bus_check(settings.bus)
    probes["send"] = lambda: send_checks(settings.send_queue)
    probes["directory"] = lambda: directory_checks(settings, limit)
    probes["api"] = api

    async def bounded(name: str) -> list[Check]:
        if name in skip:
            return [Check(name, "skip", "skipped (--skip)")]
        task = asyncio.ensure_future(probes[name]())
        await asyncio.wait({task}, timeout=limit)
        if task.done():
            return task.result()
        # Not wait_for: it waits for the cancelled probe, and a client stuck in its clean-up
        # would hold the whole report. The probe gets a second to go, then is left behind.
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
        return [Check(name, "down", f"no answer within {limit:g}s")]

    results = await asyncio.gather(*(bounded(name) for name in PARTS))
    return [check for group in results for check in group]


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

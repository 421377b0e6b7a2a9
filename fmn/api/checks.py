"""Checks of what the API depends on, for /healthz/ready and the admins' status page. Each
answers within a few seconds and reports a failure instead of raising."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from fmn.api.schemas import ComponentStatus
from fmn.api.services import Services
from fmn.db.migrations import current_revision, head_revision
from fmn.sendqueue.topology import dead_letter_queue, send_queue
from fmn.sendqueue.workitem import PROTOCOLS

TIMEOUT = 5.0


async def _check(name: str, probe: Callable[[], Awaitable[str | None]]) -> ComponentStatus:
    try:
        detail = await asyncio.wait_for(probe(), TIMEOUT)
    except TimeoutError:
        return ComponentStatus(name=name, ok=False, detail=f"no answer within {TIMEOUT:g}s")
    except Exception as exc:
        return ComponentStatus(name=name, ok=False, detail=f"{type(exc).__name__}: {exc}"[:500])
    return ComponentStatus(name=name, ok=True, detail=detail)


def _sync_revision(session: AsyncSession) -> Callable[[], Awaitable[str | None]]:
    async def probe() -> str | None:
        current = await session.run_sync(lambda s: current_revision(s.connection()))
        head = head_revision()
        if current != head:
            raise RuntimeError(f"schema at {current}, code expects {head}: run `fmn db upgrade`")
        return f"at {head}"

    return probe


async def database_checks(services: Services) -> list[ComponentStatus]:
    async with services.sessionmaker() as session:

        async def ping() -> str | None:
            await session.execute(text("SELECT 1"))
            return None

        database = await _check("database", ping)
        if not database.ok:
            return [database, ComponentStatus(name="migrations", ok=False, detail="no database")]
        return [database, await _check("migrations", _sync_revision(session))]


async def bus_check(services: Services) -> ComponentStatus:
    async def probe() -> str | None:
        await services.announcer.ensure_connected()
        channel = getattr(type(services.bus), "channel", None)
        if channel is not None and services.bus.channel.is_closed:  # type: ignore[attr-defined]
            raise RuntimeError("the connection to the broker is down")
        return f"{services.announcer.pending} announcements waiting"

    return await _check("bus", probe)


async def cache_check(services: Services) -> ComponentStatus:
    async def probe() -> str | None:
        await services.cache.ping()
        return None

    return await _check("cache", probe)


async def readiness(services: Services) -> list[ComponentStatus]:
    checks = await asyncio.gather(bus_check(services), cache_check(services))
    return [*(await database_checks(services)), *checks]


async def status(services: Services, username: str) -> list[ComponentStatus]:
    """Everything readiness checks, plus the directory and the send queues."""

    async def directory() -> str | None:
        found = await services.directory.get_user(username)
        return None if found is not None else f"{username} not found (the look-up worked)"

    async def queues() -> str | None:
        broker = await services.get_send_broker()
        exchange = services.settings.send_queue.exchange
        parts = []
        for protocol in PROTOCOLS:
            waiting = await broker.queue_size(send_queue(exchange, protocol))
            dead = await broker.queue_size(dead_letter_queue(exchange, protocol))
            parts.append(f"{protocol}: {waiting} waiting, {dead} dead")
        return "; ".join(parts)

    found = await readiness(services)
    found.append(await _check("directory", directory))
    found.append(await _check("send queues", queues))
    announcer = services.announcer
    found.append(
        ComponentStatus(
            name="announcements",
            ok=announcer.failed == 0,
            detail=f"{announcer.pending} waiting, {announcer.failed} given up since start",
        )
    )
    return found

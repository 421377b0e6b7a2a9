"""Readiness and the admins' status page: the health checks (fmn.health) of what an API process
depends on, seen from inside it, through its own services. Each answers within a few seconds
and reports a failure instead of raising."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection

from fmn.api.schemas import ComponentStatus
from fmn.api.services import Services
from fmn.health.probes import Check, Probe, database_checks, run_probes, send_queue_checks

TIMEOUT = 5.0


def _database(services: Services) -> Probe:
    @asynccontextmanager
    async def connect() -> AsyncIterator[AsyncConnection]:
        async with services.sessionmaker() as session:
            yield await session.connection()

    return lambda: database_checks(connect)


def _bus(services: Services) -> Probe:
    async def probe() -> list[Check]:
        await services.announcer.ensure_connected()
        channel = getattr(type(services.bus), "channel", None)
        if channel is not None and services.bus.channel.is_closed:  # type: ignore[attr-defined]
            raise RuntimeError("the connection to the broker is down")
        return [Check("bus", "ok", f"{services.announcer.pending} announcements waiting")]

    return probe


def _cache(services: Services) -> Probe:
    async def probe() -> list[Check]:
        await services.cache.ping()
        return [Check("cache", "ok")]

    return probe


def _readiness_probes(services: Services) -> dict[str, Probe]:
    return {"database": _database(services), "bus": _bus(services), "cache": _cache(services)}


async def readiness(services: Services) -> list[Check]:
    """The database with the current schema, the bus and the cache."""
    return await run_probes(_readiness_probes(services), TIMEOUT)


async def status(services: Services, username: str) -> list[ComponentStatus]:
    """Everything readiness checks, plus the directory, the send queues and the announcements."""

    async def directory() -> list[Check]:
        found = await services.directory.get_user(username)
        detail = "" if found is not None else f"{username} not found (the look-up worked)"
        return [Check("directory", "ok", detail)]

    async def queues() -> list[Check]:
        broker = await services.get_send_broker()
        send = services.settings.send_queue
        checks = await send_queue_checks(broker.queue_size, send, retries=False)
        # One line on the page: "email: 2 waiting, 0 dead; irc: ...".
        detail = "; ".join(f"{c.name.removeprefix('send ')}: {c.detail}" for c in checks)
        return [Check("send queues", "ok", detail)]

    announcer = services.announcer
    announcements = Check(
        "announcements",
        "ok" if announcer.failed == 0 else "down",
        f"{announcer.pending} waiting, {announcer.failed} given up since start",
    )
    probes = {**_readiness_probes(services), "directory": directory, "send queues": queues}
    found = [*await run_probes(probes, TIMEOUT), announcements]
    return [ComponentStatus(name=c.name, ok=c.ok, detail=c.detail or None) for c in found]

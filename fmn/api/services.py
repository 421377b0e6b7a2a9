"""What the API's requests share: settings, database sessions, directory, cache, token verifier,
bus announcer, rate limiter. Built once per process at startup; anything given to `create_app`
(tests: a session factory on the test's transaction, a local directory) is used as is."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from cashews import Cache
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from fmn.api.announce import Announcer
from fmn.api.auth import TokenVerifier
from fmn.api.limits import RateLimiter
from fmn.api.preview_gate import PreviewGate
from fmn.api.rule_cache import RulePages
from fmn.core.settings import DatabaseSettings, Settings
from fmn.db.session import make_engine, make_sessionmaker
from fmn.directory.base import Directory
from fmn.inbox.events import InboxEvents, make_events
from fmn.transport import bus_broker
from fmn.transport.base import Broker

log = logging.getLogger(__name__)


@dataclass
class Overrides:
    """Parts given from outside instead of built from the settings."""

    sessionmaker: async_sessionmaker[AsyncSession] | None = None
    directory: Directory | None = None
    bus: Broker | None = None
    send_broker: Broker | None = None


@dataclass
class Services:
    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    # For requests that only read: no transaction (no BEGIN/ROLLBACK round trips).
    read_sessionmaker: async_sessionmaker[AsyncSession]
    directory: Directory
    cache: Cache
    verifier: TokenVerifier
    bus: Broker
    announcer: Announcer
    limiter: RateLimiter
    previews: PreviewGate
    # The rules list's pages as JSON, kept while the database says they are still true.
    rule_pages: RulePages
    engines: list[AsyncEngine] = field(default_factory=list)
    owns_directory: bool = False
    owns_bus: bool = False
    # The private send exchange's broker (dead letters, queue sizes), opened on first use.
    send_broker: Broker | None = None
    owns_send_broker: bool = False
    _send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # News of users' inboxes for the live streams, relayed from the first stream on.
    inbox_events: InboxEvents | None = None
    _events_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def get_inbox_events(self) -> InboxEvents:
        """For publishing: built on first use, not relaying."""
        if self.inbox_events is None:
            self.inbox_events = make_events(self.settings.cache.url)
        return self.inbox_events

    async def relaying_inbox_events(self) -> InboxEvents:
        """For streams: relaying the other processes' news to this one's streams."""
        async with self._events_lock:
            events = self.get_inbox_events()
            await events.start()
            return events

    async def get_send_broker(self) -> Broker:
        async with self._send_lock:
            if self.send_broker is None:
                from fmn.sendqueue.deadletters import open_broker

                self.send_broker = await open_broker(self.settings.send_queue)
                self.owns_send_broker = not self.settings.send_queue.in_process
            return self.send_broker


def make_read_engine(settings: DatabaseSettings) -> AsyncEngine | None:
    """PostgreSQL connections in autocommit mode, for requests that only read: no BEGIN and
    ROLLBACK around their queries. None for other databases.

    No pre-ping (a round trip per request, as much as the rules list's own query): a
    connection the server closed (restart, terminated backend) is known to asyncpg as closed,
    and is replaced when taken from the pool."""
    url = make_url(settings.url)
    if url.get_backend_name() != "postgresql":
        return None
    engine = create_async_engine(
        url,
        echo=settings.echo,
        pool_size=settings.pool_size,
        # Beyond pool_size, requests wait for a connection rather than open one that is
        # closed again on return: under a burst, opening and closing connections (a
        # PostgreSQL process each) cost more than the queries.
        max_overflow=0,
        isolation_level="AUTOCOMMIT",
    )
    event.listen(engine.sync_engine, "checkout", _closed_is_disconnected)
    return engine


def _closed_is_disconnected(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """The pool's checkout hook: a connection asyncpg knows is closed is thrown away (the pool
    then takes or opens another)."""
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed the connection")


def make_cache(url: str) -> Cache:
    cache = Cache(name="fmn-api")
    cache.setup(url)
    return cache


async def start_services(settings: Settings, overrides: Overrides) -> Services:
    engines: list[AsyncEngine] = []
    sessionmaker: async_sessionmaker[AsyncSession]
    if overrides.sessionmaker is not None:
        sessionmaker = read_sessionmaker = overrides.sessionmaker
    else:
        engine = make_engine(settings.database)
        read_engine = make_read_engine(settings.database) or engine
        engines = list(dict.fromkeys([engine, read_engine]))
        sessionmaker = make_sessionmaker(engine)
        read_sessionmaker = make_sessionmaker(read_engine)
    directory = overrides.directory
    owns_directory = directory is None
    if directory is None:
        from fmn.directory.factory import make_directory

        directory = make_directory(settings)
    cache = make_cache(settings.cache.url)
    bus = overrides.bus or bus_broker(settings.bus, "fmn api")
    # In-process brokers are shared with the other parts of an embedded run: never close those.
    owns_bus = overrides.bus is None and not settings.bus.in_process
    announcer = Announcer(
        bus, settings.bus.exchange, settings.bus.topic_prefix, settings.api.announce_retry_delays
    )
    announcer.start()
    limiter = RateLimiter(cache, settings.api.rate_limit_per_minute)
    return Services(
        settings=settings,
        sessionmaker=sessionmaker,
        read_sessionmaker=read_sessionmaker,
        directory=directory,
        cache=cache,
        verifier=TokenVerifier(settings.oidc, cache, limiter),
        bus=bus,
        announcer=announcer,
        limiter=limiter,
        previews=PreviewGate(
            cache, settings.api.preview_concurrency, settings.api.preview_time_budget
        ),
        rule_pages=RulePages(read_sessionmaker),
        engines=engines,
        owns_directory=owns_directory,
        owns_bus=owns_bus,
        send_broker=overrides.send_broker,
    )


async def stop_services(services: Services) -> None:
    await services.announcer.stop()
    await services.rule_pages.aclose()
    if services.owns_bus:
        with contextlib.suppress(Exception):
            await services.bus.close()
    if services.owns_send_broker and services.send_broker is not None:
        with contextlib.suppress(Exception):
            await services.send_broker.close()
    await services.verifier.aclose()
    if services.owns_directory:
        from fmn.directory.factory import close_directory

        await close_directory(services.directory)
    if services.inbox_events is not None:
        await services.inbox_events.close()
    await services.cache.close()
    for engine in services.engines:
        await engine.dispose()

"""The whole system under soak, started and always stopped here: a fresh RabbitMQ vhost,
PostgreSQL database and Redis keys; an SMTP server, an IRC network (InspIRCd + Atheme) and the
directory server of the tests (tests/harness); two `fmn consumer`, `fmn sender email` and
`fmn sender irc`. In "proxy" mode fmn's processes reach the machine's RabbitMQ, PostgreSQL and
Redis through cuttable TCP proxies (bench/soak_proxy.py); in "restart" mode they use private
instances that the soak starts, restarts and removes itself (bench/soak_services.py), so that
the machine's shared services are never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import aio_pika
import asyncpg
import httpx
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from bench.soak_procs import FmnProcess, stop_all, write_config
from bench.soak_proxy import ProxyProcess
from bench.soak_services import PrivateServices
from bench.soak_smtp import SmtpProcess
from bench.soak_world import (
    MAIL_DOMAIN,
    PUBLIC_URL,
    REFUSED_EMAIL,
    World,
    irc_ident,
    matrix_ident,
)
from fmn.db import migrations
from fmn.rules import schema, transfer
from fmn.sendqueue.topology import send_queue
from fmn.transport.failover import FailoverConnection
from tests.harness import directory_server, services
from tests.harness.ports import free_port

EXCHANGE = "fmn.send"
BUS_QUEUE = "fmn"
IRC_BOT, IRC_PASSWORD = "fmnsoak", "soak-secret"
Mode = Literal["proxy", "restart"]


@dataclass
class SoakConfig:
    messages: int = 100_000
    rate: float = 150.0
    mode: Mode = "restart"
    faults: list[str] = field(default_factory=list)
    fault_seconds: float = 10.0
    recovery_timeout: float = 120.0
    workdir: Path = Path("soak-run")
    redis_db: int = 0
    seed: int = 1
    # Sender retry delays: long enough in total to outlast every fault, so none dead-letters
    # (4 minutes: a homeserver restart took 2-3 minutes on the shared machine at load 20).
    retry_delays: list[float] = field(
        default_factory=lambda: [1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0]
    )
    smtp_connections: int = 4
    # How long a killed IRC or Matrix sender's lease keeps its restarted successor standing by.
    irc_lease: float = 30.0
    # A homeserver (Synapse, tests/harness/matrix_server.py) and `fmn sender matrix`.
    matrix: bool = True
    # Restart mode: a three-node RabbitMQ cluster instead of one node, fmn's processes given
    # every node's URL (bus.amqp_urls) and their queues declared as quorum queues.
    cluster: bool = False


def _host_port(url: str, default: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default


def _with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    auth = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return parts._replace(netloc=f"{auth}{parts.hostname}:{port}").geturl()


class TimedList(list[Any]):
    """An IRC reader's PRIVMSGs or a Matrix reader's messages, each stamped with its arrival
    time."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def append(self, item: Any) -> None:
        self.times.append(time.time())
        super().append(item)


class System:
    def __init__(self, config: SoakConfig, world: World) -> None:
        self.config = config
        self.world = world
        self.dir = config.workdir.resolve()
        self.tag = uuid.uuid4().hex[:8]
        self.vhost = f"fmn-soak-{self.tag}"
        self.db_name = f"fmn_soak_{self.tag}"
        self.proxy: ProxyProcess | None = None
        self.private: PrivateServices | None = None
        self.smtp = SmtpProcess(refuse={REFUSED_EMAIL})
        self.irc: Any = None  # tests.harness.irc_server.IRCNetwork
        self.readers: list[Any] = []
        self.synapse: Any = None  # tests.harness.matrix_server.Synapse
        self.matrix_bot: Any = None  # tests.harness.matrix_server.Account
        self.matrix_readers: list[Any] = []  # tests.harness.matrix_server.MatrixReader
        self._matrix_seen: dict[str, int] = {}
        self._matrix_polling: asyncio.Task[None] | None = None
        self.directory_url = ""
        self.processes: dict[str, FmnProcess] = {}
        self._irc_seen: dict[str, int] = {}
        self.amqp_direct = f"{services.AMQP_HOST}/{self.vhost}"
        # Every node's URL, the first one's first (amqp_direct alone without a cluster).
        self.amqp_urls = [self.amqp_direct]
        self._monitor: aio_pika.abc.AbstractRobustConnection | None = None
        self._cleanups: list[Callable[[], Any]] = []

    # ---- start ----------------------------------------------------------------------------

    async def start(self, log: Callable[[str], None] = print) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        started = time.time()
        await self._services()
        urls = self._fmn_urls()
        self.smtp.start()
        self._cleanups.append(self.smtp.stop)
        log(f"services, proxies and SMTP server ready in {time.time() - started:.1f} s")
        await self._irc_network()
        log(f"IRC network ready in {time.time() - started:.1f} s")
        if self.config.matrix:
            await self._homeserver()
            log(f"Matrix homeserver ready in {time.time() - started:.1f} s")
        directory_port = free_port()
        self.directory_url = f"http://127.0.0.1:{directory_port}"
        config = write_config(self.dir / "fmn.toml", self._settings(urls))
        (self.dir / "directory.json").write_text(json.dumps(self.world.directory))
        directory = directory_server.command(self.dir / "directory.json", directory_port)
        roles = {
            "directory": [],
            "consumer-1": ["consumer"],
            "consumer-2": ["consumer"],
            "sender-email": ["sender", "email"],
            "sender-irc": ["sender", "irc"],
        }
        if self.config.matrix:
            roles["sender-matrix"] = ["sender", "matrix"]
        for name, args in roles.items():
            self.processes[name] = FmnProcess(name, args, config, self.dir / f"{name}.log")
        self.processes["directory"].program = directory
        self.processes["directory"].start()
        await self._wait_http(f"{self.directory_url}/_admin/stats")
        for name in roles:
            if name != "directory":
                self.processes[name].start()
        self._monitor = await connect_failover(self.amqp_urls, "soak monitor")
        await self.wait_ready()
        log(f"fmn processes ready in {time.time() - started:.1f} s")

    async def _services(self) -> None:
        if self.config.mode == "restart":
            await self._private_services()
        else:
            await self._shared_services()
        await asyncio.to_thread(migrations.upgrade, self.pg_direct)
        engine = create_async_engine(self.pg_direct, poolclass=NullPool)
        try:
            async with AsyncSession(engine) as session, session.begin():
                rules = [schema.Rule.model_validate(r) for r in self.world.rules]
                await transfer.import_rules(session, rules)
        finally:
            await engine.dispose()
        await _forget_redis_keys(self.redis_direct)

    async def _private_services(self) -> None:
        """RabbitMQ, PostgreSQL and Redis of the soak's own, for restart mode: fresh, so the
        default vhost, a new database and Redis database 0 are the soak's alone."""
        self.private = private = PrivateServices(self.dir, cluster=self.config.cluster)
        # Before starting: a half-started service is removed too.
        self._cleanups.append(private.remove)
        await asyncio.to_thread(private.start)
        self.amqp_urls = private.amqp_urls
        self.amqp_direct = self.amqp_urls[0]
        conn = await asyncpg.connect(private.pg.admin_dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{self.db_name}"')
        finally:
            await conn.close()
        base = private.pg.admin_dsn.rsplit("/", 1)[0]
        self.pg_direct = f"{base.replace('postgresql://', 'postgresql+asyncpg://')}/{self.db_name}"
        self.redis_direct = f"{private.redis.url}/0"

    async def _shared_services(self) -> None:
        await asyncio.to_thread(services.rabbitmqctl, "add_vhost", self.vhost)
        self._cleanups.append(lambda: services.delete_vhost(self.vhost))
        await asyncio.to_thread(
            services.rabbitmqctl, "set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*"
        )
        self.pg_direct = await asyncio.to_thread(services.recreate_database, self.db_name)
        self._cleanups.append(lambda: services.drop_database(self.db_name))
        self.redis_direct = f"{services.REDIS_HOST}/{self.config.redis_db}"

    def _fmn_urls(self) -> dict[str, str]:
        """Where fmn's processes find RabbitMQ, PostgreSQL and Redis."""
        urls = {"amqp": self.amqp_direct, "pg": self.pg_direct, "redis": self.redis_direct}
        if self.config.mode != "proxy":
            return urls
        defaults = {"amqp": 5672, "pg": 5432, "redis": 6379}
        self.proxy = ProxyProcess({n: _host_port(u, defaults[n]) for n, u in urls.items()})
        self.proxy.start()
        self._cleanups.append(self.proxy.stop)
        return {n: _with_port(u, self.proxy.ports[n]) for n, u in urls.items()}

    async def _irc_network(self) -> None:
        from tests.harness.irc_server import IRCNetwork

        irc_dir = self.dir / "irc"
        irc_dir.mkdir(exist_ok=True)
        self.irc = IRCNetwork(irc_dir)
        self.irc.start()
        self._cleanups.append(self.irc.stop)
        await self.irc.register(IRC_BOT, IRC_PASSWORD)
        for nick in self.world.irc_nicks:
            reader = await self.irc.reader(nick)
            reader.privmsgs = TimedList()
            self.readers.append(reader)

    async def _homeserver(self) -> None:
        from tests.harness.matrix_server import Synapse

        directory = self.dir / "synapse"
        directory.mkdir(exist_ok=True)
        self.synapse = Synapse(directory)
        self._cleanups.append(self.synapse.stop)
        await asyncio.to_thread(self.synapse.start, 600.0)
        self.matrix_bot = await asyncio.to_thread(self.synapse.register, "fmnsoak", True)
        for name in self.world.matrix_users:
            account = await asyncio.to_thread(self.synapse.register, name)
            reader = await self.synapse.reader(account)
            reader.messages = TimedList()
            self.matrix_readers.append(reader)
        self._matrix_polling = asyncio.create_task(self._poll_matrix())

    async def _poll_matrix(self) -> None:
        """The Matrix readers ask for what is new twice a second (the homeserver may be away:
        a restart is one of the faults)."""
        while True:
            for reader in self.matrix_readers:
                with contextlib.suppress(Exception):
                    await reader.poll()
            await asyncio.sleep(0.5)

    def _matrix_settings(self) -> dict[str, Any]:
        if not self.config.matrix:
            return {}
        return {
            "senders.matrix": {
                "homeserver": self.synapse.url,
                "user_id": self.matrix_bot.user_id,
                "access_token": self.matrix_bot.access_token,
                "messages_per_second": 1000,
                "burst": 1000,
                "timeout": 10.0,
            }
        }

    def _broker_settings(self, url: str) -> dict[str, Any]:
        if not self.config.cluster:
            return {"amqp_url": url}
        return {"amqp_urls": self.amqp_urls, "queue_type": "quorum"}

    def _settings(self, urls: dict[str, str]) -> dict[str, Any]:
        return {
            "public_url": PUBLIC_URL,
            "database": {"url": urls["pg"], "pool_size": 5},
            "cache": {"url": urls["redis"]},
            "bus": {**self._broker_settings(urls["amqp"]), "queue": BUS_QUEUE},
            "send_queue": {
                **self._broker_settings(urls["amqp"]),
                "exchange": EXCHANGE,
                "retry_delays": self.config.retry_delays,
            },
            "directory": {
                "fasjson_url": self.directory_url,
                "distgit_url": self.directory_url,
                "timeout": 2.0,
                "retries": 1,
            },
            "consumer": {"retry_delay": 0.5, "counts_interval": 2.0},
            # A random key each run: the processes refuse a short or placeholder one.
            "api": {"secret_keys": [secrets.token_urlsafe(48)]},
            "senders": {
                # Collapsing a burst into one digest would hide which notifications it carries;
                # digests have their own tests (tests/senders/test_digests.py).
                "digest_threshold": 1_000_000_000,
                "instance_lease": self.config.irc_lease,
                "log_flush_interval": 0.5,
                "digest_poll_interval": 1.0,
            },
            "senders.email": {
                "from_address": f"Fedora Notifications <notifications@{MAIL_DOMAIN}>",
                "smtp_host": "127.0.0.1",
                "smtp_port": self.smtp.port,
                "connections": self.config.smtp_connections,
                "timeout": 10.0,
            },
            "senders.irc": {
                "host": "127.0.0.1",
                "port": self.irc.tls_port,
                "tls": True,
                "ca_file": str(self.irc.cert),
                "nickname": IRC_BOT,
                "sasl_username": IRC_BOT,
                "sasl_password": IRC_PASSWORD,
                "line_interval": 0.001,
                "burst": 1000,
                "reconnect_min": 0.2,
                "reconnect_max": 2.0,
                "confirm_timeout": 5.0,
            },
            **self._matrix_settings(),
        }

    # ---- state --------------------------------------------------------------------------

    async def consumers_on(self, queue: str) -> int:
        """Consumers RabbitMQ counts on a queue (0 if it does not exist yet)."""
        assert self._monitor is not None
        try:
            channel = await self._monitor.channel()
        except Exception:  # the broker is away, or not back yet
            return 0
        try:
            declared = await channel.declare_queue(queue, passive=True)
            return int(declared.declaration_result.consumer_count or 0)
        except Exception:  # the queue does not exist yet, or the broker went away
            return 0
        finally:
            with contextlib.suppress(Exception):
                await channel.close()

    async def wait_ready(self, timeout: float = 180) -> None:
        """Until both consumers and both senders consume their queues."""
        wanted = {
            BUS_QUEUE: 2,
            send_queue(EXCHANGE, "email"): 1,
            send_queue(EXCHANGE, "irc"): 1,
        }
        if self.config.matrix:
            wanted[send_queue(EXCHANGE, "matrix")] = 1
        deadline = time.monotonic() + timeout
        while True:
            counts = {q: await self.consumers_on(q) for q in wanted}
            if all(counts[q] >= n for q, n in wanted.items()):
                return
            self.check_processes()
            if time.monotonic() > deadline:
                logs = "\n".join(f"== {p.name}\n{p.tail(1500)}" for p in self.processes.values())
                raise RuntimeError(f"not ready after {timeout:.0f} s: {counts}\n{logs}")
            await asyncio.sleep(0.3)

    def check_processes(self) -> list[str]:
        """Restart a process that ended on its own (as systemd would) and say so."""
        crashed = []
        for p in self.processes.values():
            code = p.check()
            if code is not None:
                crashed.append(f"{p.name} exited with {code}")
                p.start()
        return crashed

    def receipts(self) -> list[tuple[float, str]]:
        """(arrival, ident) of every mail and IRC line received since the last call."""
        got = [(t, ident) for t, ident, _rcpt in self.smtp.drain()]
        for reader in self.readers:
            lines: TimedList = reader.privmsgs
            seen = self._irc_seen.get(reader.nick, 0)
            for t, (_sender, text) in zip(lines.times[seen:], lines[seen:], strict=True):
                got.append((t, irc_ident(reader.nick, text.decode("utf-8", "replace"))))
            self._irc_seen[reader.nick] = len(lines)
        for mx in self.matrix_readers:
            messages: TimedList = mx.messages
            user_id = mx.client.user_id
            seen = self._matrix_seen.get(user_id, 0)
            for t, (_room, content) in zip(messages.times[seen:], messages[seen:], strict=True):
                got.append((t, matrix_ident(user_id, str(content.get("body", "")))))
            self._matrix_seen[user_id] = len(messages)
        return got

    async def directory_fault(self, fail: bool) -> None:
        async with httpx.AsyncClient(base_url=self.directory_url, timeout=10) as client:
            if fail:
                spec = {"status": 503, "seconds": 24 * 3600}
                (await client.post("/_admin/fault", json=spec)).raise_for_status()
            else:
                (await client.delete("/_admin/fault")).raise_for_status()

    async def _wait_http(self, url: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=1) as client:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    (await client.get(url)).raise_for_status()
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{url} does not answer")
                await asyncio.sleep(0.2)

    # ---- stop -----------------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop everything started, in reverse order; never raises."""
        await asyncio.to_thread(stop_all, list(self.processes.values()))
        if self._matrix_polling is not None:
            self._matrix_polling.cancel()
            await asyncio.gather(self._matrix_polling, return_exceptions=True)
        for reader in [*self.readers, *self.matrix_readers]:
            with contextlib.suppress(Exception):
                await reader.close()
        if self._monitor is not None:
            with contextlib.suppress(Exception):
                await self._monitor.close()
        with contextlib.suppress(Exception):
            await _forget_redis_keys(self.redis_direct)
        for cleanup in reversed(self._cleanups):
            try:
                await asyncio.to_thread(cleanup)
            except Exception as exc:  # keep going: every other part must still be stopped
                print(f"soak: cleanup {cleanup} failed: {exc!r}")


async def connect_failover(urls: list[str], name: str) -> aio_pika.abc.AbstractRobustConnection:
    """A robust connection that goes to the next node when its node is lost (as fmn's own)."""
    connection = FailoverConnection(urls, name)
    await connection.connect()
    return connection


async def _forget_redis_keys(url: str) -> None:
    """fmn's keys only: the directory cache and the senders' state of an earlier run."""
    client = aioredis.from_url(url)
    try:
        for pattern in ("fmn:directory:*", "fmn:senders:*"):
            batch = [key async for key in client.scan_iter(match=pattern, count=1000)]
            for start in range(0, len(batch), 1000):
                await client.delete(*batch[start : start + 1000])
    finally:
        await client.aclose()

"""The faults the soak injects. Each one is injected, held for a while, then lifted; `restore`
puts the world back as it was whatever happened (it runs in the harness's `finally`).

RabbitMQ, PostgreSQL and Redis go down in one of two ways:
- "proxy" mode: the TCP proxy between fmn and the service is cut (every connection reset, new
  ones refused), the service itself untouched, so other people's tests are not disturbed;
- "restart" mode: the soak's own instance of the service (bench/soak_services.py) is stopped
  and started again: cleanly (`rabbitmq`, `redis`, `postgresql`) or as a crash (`rabbitmq-kill`,
  `redis-kill`, `postgresql-kill`: kill -9 of the Erlang VM or of redis-server, PostgreSQL's
  immediate stop). The machine's shared services are never touched.

With `--cluster`, RabbitMQ is three nodes: `rabbitmq-node<N>` stops node N cleanly and
`rabbitmq-node<N>-kill` kills it -9, the other two going on.
"""

from __future__ import annotations

import abc
import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bench.soak_services import PrivateService
from bench.soak_system import System
from bench.soak_world import Message

Publish = Callable[[list[Message]], Awaitable[None]]


@dataclass
class Context:
    system: System
    publish: Publish  # publishes extra messages now, their notifications expected too


class Fault(abc.ABC):
    name: str

    @abc.abstractmethod
    async def inject(self, ctx: Context) -> None: ...

    @abc.abstractmethod
    async def lift(self, ctx: Context) -> None: ...

    async def restore(self, ctx: Context) -> None:
        await self.lift(ctx)


class KillProcess(Fault):
    """kill -9 of one fmn process; it is started again when the fault is lifted."""

    def __init__(self, process: str) -> None:
        self.process = process
        self.name = f"kill -9 {process}"

    async def inject(self, ctx: Context) -> None:
        # Not in a thread: the harness must never see this exit as a crash of its own.
        ctx.system.processes[self.process].kill()

    async def lift(self, ctx: Context) -> None:
        process = ctx.system.processes[self.process]
        if not process.alive:
            process.start()


class CutProxy(Fault):
    def __init__(self, service: str) -> None:
        self.service = service
        self.name = f"{_LABELS[service]} unreachable (proxy cut)"

    async def inject(self, ctx: Context) -> None:
        assert ctx.system.proxy is not None
        await asyncio.to_thread(ctx.system.proxy.cut, self.service)

    async def lift(self, ctx: Context) -> None:
        assert ctx.system.proxy is not None
        await asyncio.to_thread(ctx.system.proxy.restore, self.service)


class RestartService(Fault):
    """The soak's own instance of the service (restart mode) stopped, cleanly or as a crash
    (kill -9 or its like, see bench/soak_services.py), and started again when lifted."""

    def __init__(self, service: str, crash: bool) -> None:
        self.service = service
        self.crash = crash
        how = "killed (kill -9) and started again" if crash else "restarted"
        if crash and service == "pg":
            how = "crashed (pg_ctl stop -m immediate) and started again"
        self.name = f"{_LABELS[service]} {how}"

    def _instance(self, ctx: Context) -> PrivateService:
        assert ctx.system.private is not None, "restart mode runs private services"
        return ctx.system.private.services[self.service]

    async def inject(self, ctx: Context) -> None:
        await asyncio.to_thread(self._instance(ctx).stop, self.crash)

    async def lift(self, ctx: Context) -> None:
        instance = self._instance(ctx)
        if not instance.running:
            await asyncio.to_thread(instance.start)


class ClusterNodeRestart(Fault):
    """One node of the soak's RabbitMQ cluster (`--cluster`) stopped, cleanly or by kill -9 of
    its Erlang VM, and started again when lifted (it rejoins the cluster by itself). fmn's
    clients connected to it fail over to the next node; its quorum queues' leaders move."""

    def __init__(self, number: int, crash: bool) -> None:
        self.number = number
        self.crash = crash
        how = "killed (kill -9) and started again" if crash else "stopped and started again"
        self.name = f"RabbitMQ node {number} of the cluster {how}"

    def _node(self, ctx: Context) -> PrivateService:
        assert ctx.system.private is not None and ctx.system.private.cluster, "needs --cluster"
        return ctx.system.private.amqp_cluster.nodes[self.number - 1]

    async def inject(self, ctx: Context) -> None:
        await asyncio.to_thread(self._node(ctx).stop, self.crash)

    async def lift(self, ctx: Context) -> None:
        node = self._node(ctx)
        if not node.running:
            await asyncio.to_thread(node.start)


class SmtpRefusing(Fault):
    name = "SMTP server refusing (451)"

    async def inject(self, ctx: Context) -> None:
        ctx.system.smtp.set_refusing(True)

    async def lift(self, ctx: Context) -> None:
        ctx.system.smtp.set_refusing(False)


class DirectoryFailing(Fault):
    """The directory answers 503 while an ownership change arrives: every consumer must wait
    for the directory rather than take the failure for "owns nothing" (FMN 3 #1064)."""

    name = "directory failing (503) during an ownership change"

    def __init__(self, change: Callable[[], Message]) -> None:
        self.change = change

    async def inject(self, ctx: Context) -> None:
        await ctx.system.directory_fault(True)
        await ctx.publish([self.change()])

    async def lift(self, ctx: Context) -> None:
        await ctx.system.directory_fault(False)


# Synapse took up to 3 minutes to start on the shared machine at load 20.
HOMESERVER_START_TIMEOUT = 600.0


class HomeserverRestart(Fault):
    """The Matrix homeserver stopped (SIGTERM) and started again when lifted: sends fail
    meanwhile and go through the retry queues."""

    name = "Matrix homeserver restarted"

    async def inject(self, ctx: Context) -> None:
        await asyncio.to_thread(ctx.system.synapse.stop)

    async def lift(self, ctx: Context) -> None:
        if not ctx.system.synapse.running:
            await asyncio.to_thread(ctx.system.synapse.start, HOMESERVER_START_TIMEOUT)


_LABELS = {"amqp": "RabbitMQ", "pg": "PostgreSQL", "redis": "Redis"}

FAULT_NAMES = (
    "kill-consumer",
    "kill-sender-email",
    "kill-sender-irc",
    "rabbitmq",
    "redis",
    "postgresql",
    "smtp-refusing",
    "directory-failing",
    "kill-sender-matrix",
    "matrix",
)
MATRIX_FAULTS = ("kill-sender-matrix", "matrix")
# A service crashed rather than stopped (restart mode; in proxy mode the same cut as above).
CRASH_NAMES = ("rabbitmq-kill", "redis-kill", "postgresql-kill")
_SERVICES = {"rabbitmq": "amqp", "redis": "redis", "postgresql": "pg"}
# One node of the cluster (--cluster): rabbitmq-node<N> stops it cleanly, -kill kills it -9.
CLUSTER_FAULT = re.compile(r"rabbitmq-node(?P<number>[1-3])(?P<kill>-kill)?")
# The cluster soak's default: the first node (every client's first URL) killed, then the second
# (where they failed over to) stopped cleanly.
CLUSTER_FAULTS = ("rabbitmq-node1-kill", "rabbitmq-node2")


def make_fault(name: str, mode: str, ownership_change: Callable[[], Message]) -> Fault:
    crash = name in CRASH_NAMES
    node = CLUSTER_FAULT.fullmatch(name)
    if node is not None:
        return ClusterNodeRestart(int(node["number"]), crash=bool(node["kill"]))
    if name.removesuffix("-kill") in _SERVICES:
        service = _SERVICES[name.removesuffix("-kill")]
        return CutProxy(service) if mode == "proxy" else RestartService(service, crash)
    if name.startswith("kill-"):
        return KillProcess({"kill-consumer": "consumer-1"}.get(name, name.removeprefix("kill-")))
    if name == "smtp-refusing":
        return SmtpRefusing()
    if name == "directory-failing":
        return DirectoryFailing(ownership_change)
    if name == "matrix":
        return HomeserverRestart()
    known = ", ".join(FAULT_NAMES + CRASH_NAMES) + ", rabbitmq-node<1-3>[-kill] (--cluster)"
    raise ValueError(f"unknown fault {name!r}; known: {known}")

"""The faults the soak injects. Each one is injected, held for a while, then lifted; `restore`
puts the world back as it was whatever happened (it runs in the harness's `finally`).

RabbitMQ, PostgreSQL and Redis go down in one of two ways:
- "proxy" mode: the TCP proxy between fmn and the service is cut (every connection reset, new
  ones refused), the service itself untouched, so other people's tests are not disturbed;
- "restart" mode: the real service is stopped and started again (`rabbitmqctl stop_app`,
  `redis-cli shutdown`, `pg_ctlcluster stop`); for the bench only, as it affects every user of
  the machine's services (the Redis of this machine keeps nothing across a restart).
"""

from __future__ import annotations

import abc
import asyncio
import os
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

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


def _run(*command: str, timeout: float = 180) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=timeout)


def _answers(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), 1):
            return True
    except OSError:
        return False


async def _wait_port(port: int, up: bool, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while _answers(port) != up:
        if time.monotonic() > deadline:
            raise RuntimeError(f"port {port} still {'down' if up else 'up'} after {timeout} s")
        await asyncio.sleep(0.2)


class RestartService(Fault):
    """The real service stopped, and started again when lifted."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.name = f"{_LABELS[service]} restarted"

    async def inject(self, ctx: Context) -> None:
        await asyncio.to_thread(_STOP[self.service])
        await _wait_port(_PORTS[self.service], up=False)

    async def lift(self, ctx: Context) -> None:
        if not _answers(_PORTS[self.service]):
            await asyncio.to_thread(_START[self.service])
        await _wait_port(_PORTS[self.service], up=True)
        if self.service == "amqp":
            await asyncio.to_thread(_run, "rabbitmqctl", "-q", "await_startup")


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


_LABELS = {"amqp": "RabbitMQ", "pg": "PostgreSQL", "redis": "Redis"}
_PORTS = {"amqp": 5672, "pg": 5432, "redis": 6379}


def _pg_version() -> str:
    return sorted(os.listdir("/etc/postgresql"), key=lambda v: [int(x) for x in v.split(".")])[-1]


def _start_redis() -> None:
    Path("/var/log/redis").mkdir(parents=True, exist_ok=True)
    Path("/var/lib/redis").mkdir(parents=True, exist_ok=True)
    # The command the machine's Redis was started with (see .ci/run).
    _run(
        "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379",
        "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis",
        "--logfile", "/var/log/redis/ci.log",
    )  # fmt: skip


_STOP: dict[str, Callable[[], None]] = {
    "amqp": lambda: _run("rabbitmqctl", "-q", "stop_app"),
    "redis": lambda: _run("redis-cli", "-p", "6379", "shutdown", "nosave"),
    "pg": lambda: _run(
        "pg_ctlcluster", "--skip-systemctl-redirect", _pg_version(), "main", "stop", "-m", "fast"
    ),
}
_START: dict[str, Callable[[], None]] = {
    "amqp": lambda: _run("rabbitmqctl", "-q", "start_app"),
    "redis": _start_redis,
    "pg": lambda: _run(
        "pg_ctlcluster", "--skip-systemctl-redirect", _pg_version(), "main", "start"
    ),
}

FAULT_NAMES = (
    "kill-consumer",
    "kill-sender-email",
    "kill-sender-irc",
    "rabbitmq",
    "redis",
    "postgresql",
    "smtp-refusing",
    "directory-failing",
)
_SERVICES = {"rabbitmq": "amqp", "redis": "redis", "postgresql": "pg"}


def make_fault(name: str, mode: str, ownership_change: Callable[[], Message]) -> Fault:
    if name in _SERVICES:
        service = _SERVICES[name]
        return CutProxy(service) if mode == "proxy" else RestartService(service)
    if name.startswith("kill-"):
        return KillProcess({"kill-consumer": "consumer-1"}.get(name, name.removeprefix("kill-")))
    if name == "smtp-refusing":
        return SmtpRefusing()
    if name == "directory-failing":
        return DirectoryFailing(ownership_change)
    raise ValueError(f"unknown fault {name!r}; known: {', '.join(FAULT_NAMES)}")

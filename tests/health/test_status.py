"""`fmn status` against the real services (PostgreSQL, Redis, a RabbitMQ vhost, the local
directory server, the API run by `fmn api`), then against stopped and unreachable ones."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fmn.core.settings import Settings
from fmn.health.status import Check, gather_status, safe_url
from fmn.sendqueue.deadletters import dead_letter
from fmn.sendqueue.topology import declare_send_topology
from fmn.sendqueue.workitem import routing_key
from fmn.transport import make_broker
from fmn.transport.base import Outgoing, QueueSpec
from tests.harness import services
from tests.harness.ports import free_port
from tests.harness.signing import SIGNING_KEY

# Nothing listens on port 9 (discard) of the loopback here: a refused connection, at once.
CLOSED = "127.0.0.1:9"


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def environment(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FMN_")}
    env.update(
        {
            "FMN_DATABASE__URL": settings.database.url,
            "FMN_CACHE__URL": settings.cache.url,
            "FMN_BUS__AMQP_URL": settings.bus.amqp_url,
            "FMN_SEND_QUEUE__AMQP_URL": settings.send_queue.amqp_url,
            "FMN_DIRECTORY__FASJSON_URL": settings.directory.fasjson_url,
            "FMN_DIRECTORY__DISTGIT_URL": settings.directory.distgit_url,
            "FMN_PUBLIC_URL": settings.public_url,
            "FMN_API__SECRET_KEYS": json.dumps([SIGNING_KEY]),
        }
    )
    return env


def run_status(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-X", "faulthandler", "-m", "fmn", "status", "--json", *args]
    process = subprocess.Popen(
        command,
        env=environment(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        # Every check has its own limit: a hang is a bug; show where it hangs.
        process.send_signal(signal.SIGABRT)
        out, err = process.communicate(timeout=30)
        raise AssertionError(f"fmn status hung:\n{err}") from None
    return subprocess.CompletedProcess(command, process.returncode, out, err)


@pytest.fixture
def real(
    pg_url: str,
    redis_url: str,
    amqp_url: str,
    directory_server_url: str,
) -> Settings:
    return Settings(
        database={"url": pg_url},
        cache={"url": redis_url},
        bus={"amqp_url": amqp_url},
        send_queue={"amqp_url": amqp_url},
        directory={"fasjson_url": directory_server_url, "distgit_url": directory_server_url},
    )


class APIProcess:
    def __init__(self, settings: Settings, log: Path) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.settings = settings.model_copy(update={"public_url": self.url})
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "fmn", "api", "--host", "127.0.0.1", "--port", str(port)],
                env=environment(self.settings),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"{self.url}/api/v1/healthz/live", timeout=1).raise_for_status()
                return
            except httpx.HTTPError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"the API did not start:\n{log.read_text()}") from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@pytest.fixture
def api(real: Settings, tmp_path: Path) -> Iterator[APIProcess]:
    process = APIProcess(real, tmp_path / "api.log")
    yield process
    process.stop()


async def fill_queues(settings: Settings) -> None:
    """Two work items waiting for the email sender, one dead IRC letter, the bus queue."""
    broker = make_broker(settings.send_queue.amqp_url)
    await broker.connect()
    try:
        exchange = settings.send_queue.exchange
        await declare_send_topology(broker, exchange, settings.send_queue.retry_delays)
        for n in range(2):
            await broker.publish(exchange, Outgoing(routing_key("email"), b"{}", f"m{n}"))
        await dead_letter(broker, exchange, "irc", b"{}", "refused", 5)
        await broker.declare_queue(QueueSpec(f"{settings.bus.queue}.rejected"))
        await broker.declare_queue(QueueSpec(settings.bus.queue))
    finally:
        await broker.close()


@pytest.mark.slow
async def test_every_part_up(api: APIProcess) -> None:
    settings = api.settings
    await fill_queues(settings)
    checks = by_name(await gather_status(settings))
    for name in ("database", "migrations", "cache", "bus", "fasjson", "dist-git", "api"):
        assert checks[name].state == "ok", checks[name]
    assert checks["migrations"].detail.startswith("at ")
    assert checks["bus"].detail == "queue fmn: 0 waiting, 0 rejected"
    assert checks["send email"] == Check("send email", "ok", "2 waiting, 0 retrying, 0 dead")
    irc = checks["send irc"]
    assert irc.state == "warn" and irc.detail.startswith("0 waiting, 0 retrying, 1 dead")
    assert api.url in checks["api"].detail

    # The command: a warning is not a failure.
    result = run_status(settings)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert {c["name"] for c in report["checks"]} >= {"database", "send matrix", "api"}

    # A stopped API is down, and the exit code says so.
    api.stop()
    assert (await gather_status(settings, skip=["database"]))[-1].state == "down"
    result = run_status(settings)
    assert result.returncode == 1
    down = [c["name"] for c in json.loads(result.stdout)["checks"] if c["state"] == "down"]
    assert down == ["api"]


async def test_queues_not_declared_yet(real: Settings) -> None:
    # A fresh vhost: nothing declared, which is not an outage (no process has started yet).
    name, url = services.create_vhost()
    try:
        settings = real.model_copy(update={"bus": real.bus.model_copy(update={"amqp_url": url})})
        settings.send_queue.amqp_url = url
        checks = by_name(await gather_status(settings, skip=["api"]))
    finally:
        services.delete_vhost(name)
    assert checks["bus"] == Check(
        "bus", "ok", "queue fmn: no waiting queue yet, no rejected queue yet"
    )
    assert checks["send email"].detail == "no waiting queue yet, 0 retrying, no dead queue yet"


def test_migrations_behind(real: Settings) -> None:
    name = f"fmn_status_empty_{services.worker_id()}"
    url = services.recreate_database(name)
    try:
        settings = real.model_copy(
            update={"database": real.database.model_copy(update={"url": url})}
        )
        checks = by_name(asyncio.run(gather_status(settings, skip=["api", "bus", "send"])))
    finally:
        services.drop_database(name)
    assert checks["database"].state == "ok"
    assert checks["migrations"].state == "down"
    assert (
        "empty" in checks["migrations"].detail and "fmn db upgrade" in checks["migrations"].detail
    )


async def test_everything_unreachable() -> None:
    settings = Settings(
        public_url=f"http://{CLOSED}",
        database={"url": f"postgresql+asyncpg://postgres:secret@{CLOSED}/fmn"},
        cache={"url": f"redis://{CLOSED}/0"},
        bus={"amqp_url": f"amqp://guest:secret@{CLOSED}/"},
        send_queue={"amqp_url": f"amqp://guest:secret@{CLOSED}/"},
        directory={"fasjson_url": f"http://{CLOSED}", "distgit_url": f"http://{CLOSED}"},
    )
    checks = await gather_status(settings, limit=20)
    assert {c.name: c.state for c in checks} == {
        "database": "down",
        "migrations": "down",
        "cache": "down",
        "bus": "down",
        "send": "down",
        "fasjson": "down",
        "dist-git": "down",
        "api": "down",
    }
    # Passwords are never printed.
    assert not any("secret" in c.detail for c in checks)
    result = run_status(settings)
    assert result.returncode == 1
    assert json.loads(result.stdout)["ok"] is False


async def test_embedded_default_is_skipped_and_nothing_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    checks = by_name(await gather_status(Settings(), skip=["directory", "api"]))
    assert checks["database"].state == "down" and "no such file" in checks["database"].detail
    assert not (tmp_path / "fmn.sqlite").exists()
    for name in ("cache", "bus", "send", "directory", "api"):
        assert checks[name].state == "skip", name


async def test_a_part_that_does_not_answer_in_time(real: Settings) -> None:
    # A listening socket that never answers: the check gives up after the limit.
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        started = time.monotonic()
        checks = await gather_status(
            real, api_url=f"http://127.0.0.1:{port}/", skip=["bus", "send"], limit=1.0
        )
    assert time.monotonic() - started < 10
    assert by_name(checks)["api"].state == "down"


def test_safe_url() -> None:
    assert safe_url("amqp://u:p@h:5672/%2Ffmn") == "amqp://u:***@h:5672/%2Ffmn"
    assert safe_url("redis://h:6379/0") == "redis://h:6379/0"

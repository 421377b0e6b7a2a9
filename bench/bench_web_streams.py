"""Live-stream benchmark: one API process holding many open inbox streams while the web
sender's store path writes notifications for their users at a steady rate.

Starts the real OIDC provider of the tests (node) and `fmn api` (one worker) as processes of
their own, logs N users in, opens one stream per user (SSE over HTTP, read by this process),
then stores notifications at --rate per second for --duration seconds, each for a user picked
at random, through the web sender's own code (`WebHandler.send`: the inbox transaction, then
the news on Redis pub/sub). Reports:
- latency from the start of the store to the event's arrival at its client (p50, p99, max);
- the API process's memory per idle stream (RSS with the streams open minus before, per
  stream);
- the API process's CPU per delivered event (CPU time over the delivery phase, less what an
  idle phase of the same length with the streams open costs, per event).

Run:  .venv/bin/python bench/bench_web_streams.py [--streams 1000] [--rate 100] [--duration 30]
      [--redis redis://127.0.0.1:6379/3]
Needs PostgreSQL (trust, user postgres), Redis, node/npm (tests/harness/oidc_provider).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fmn.core.settings import DatabaseSettings, WebSettings  # noqa: E402
from fmn.db import migrations  # noqa: E402
from fmn.db.session import make_engine, make_sessionmaker  # noqa: E402
from fmn.inbox.events import make_events  # noqa: E402
from fmn.senders.web import WebHandler  # noqa: E402
from tests.harness import services  # noqa: E402
from tests.harness.oidc import Provider  # noqa: E402
from tests.harness.ports import free_port  # noqa: E402
from tests.senders.helpers import make_item  # noqa: E402

DB = "fmn_bench_web_streams"
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


def user_name(i: int) -> str:
    return f"s{i:05d}"


def write_config(workdir: Path, db_url: str, redis: str, oidc: Provider, users: list[str]) -> Path:
    directory = workdir / "directory.json"
    directory.write_text(
        json.dumps(
            {
                "users": {u: {"username": u, "emails": [f"{u}@example.org"]} for u in users},
                "groups": {},
                "projects": {},
            }
        )
    )
    config = workdir / "fmn.toml"
    config.write_text(
        f"""
[database]
url = "{db_url}"
pool_size = 10

[cache]
url = "{redis}"

[bus]
amqp_url = "memory://"

[directory]
local_file = "{directory}"

[oidc]
provider_url = "{oidc.issuer}"
client_id = "fmn-api-tests"
client_secret = "fmn-api-tests-secret"
token_check = "introspection"
allowed_clients = ["fmn-api-tests"]
token_checks_per_minute = 1000000
# The test provider keeps 1,000 tokens in memory at most: the identities checked at each
# first log-in are trusted for the whole run.
identity_ttl = 3600

[api]
secret_keys = ["{secrets.token_urlsafe(48)}"]
rate_limit_per_minute = 1000000
frontend_dir = "/nonexistent"
"""
    )
    return config


def start_api(config: Path, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    log = (workdir / "api.log").open("wb")
    command = [str(ROOT / ".venv" / "bin" / "fmn"), "--log-level", "WARNING", "api"]
    process = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env={**os.environ, "FMN_CONFIG": str(config)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 600  # a loaded machine starts slowly
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/healthz/live").status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"the API did not start, see {workdir / 'api.log'}")


def rss(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


class Streams:
    """One open stream per user, read here; arrival times by bus message id."""

    def __init__(self, base: str, tokens: dict[str, str]) -> None:
        self.base = base
        self.tokens = tokens
        self.arrived: dict[str, float] = {}
        self.opened = 0
        self._ready: dict[str, asyncio.Event] = {u: asyncio.Event() for u in tokens}
        self.http = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=len(tokens) + 10), timeout=None
        )
        self.tasks: list[asyncio.Task[None]] = []

    async def open_all(self, concurrency: int = 50) -> None:
        gate = asyncio.Semaphore(concurrency)

        async def one(user: str) -> None:
            async with gate:
                self.tasks.append(asyncio.create_task(self._read(user)))
                await self._ready[user].wait()

        await asyncio.gather(*(one(u) for u in self.tokens))

    async def _read(self, user: str) -> None:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"}
        url = f"{self.base}/api/v1/users/{user}/inbox/stream"
        async with self.http.stream("GET", url, headers=headers) as response:
            response.raise_for_status()
            self.opened += 1
            event = None
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    if event == "count":
                        self._ready[user].set()
                    elif event == "notification":
                        now = time.monotonic()
                        self.arrived[json.loads(line[6:])["message_id"]] = now

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.http.aclose()


async def deliver(
    db_url: str, redis: str, users: list[str], rate: float, duration: float
) -> dict[str, float]:
    """Store notifications at `rate`/s through the web sender's code; start times by id."""
    engine = make_engine(DatabaseSettings(url=db_url, pool_size=16))
    events = make_events(redis)
    handler = WebHandler(WebSettings(), make_sessionmaker(engine), events)
    handler.concurrency = 16  # two web senders' worth
    started: dict[str, float] = {}
    rng = random.Random(7)
    tasks = []
    # As many stores at once as a web sender runs (its concurrency): a store that must wait for
    # one of them counts its wait in its latency.
    slots = asyncio.Semaphore(handler.concurrency)

    async def store(user: str) -> None:
        item = make_item("web", user, user=user)
        started[item.message.id] = time.monotonic()
        async with slots:
            await handler.send(item)

    begin = time.monotonic()
    n = 0
    while (elapsed := time.monotonic() - begin) < duration:
        due = int(elapsed * rate) + 1
        while n < due:
            tasks.append(asyncio.create_task(store(rng.choice(users))))
            n += 1
        await asyncio.sleep(1 / rate)
    await asyncio.gather(*tasks)
    await events.close()
    await engine.dispose()
    return started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(
    args: argparse.Namespace, base: str, api_pid: int, tokens: dict[str, str], db_url: str
) -> dict[str, Any]:
    streams = Streams(base, tokens)
    await asyncio.sleep(2)
    before = rss(api_pid)
    await streams.open_all()
    await asyncio.sleep(args.settle)
    with_streams = rss(api_pid)
    idle_cpu_start = cpu_seconds(api_pid)
    await asyncio.sleep(args.duration)
    idle_cpu = cpu_seconds(api_pid) - idle_cpu_start

    cpu_start = cpu_seconds(api_pid)
    started = await deliver(db_url, args.redis, list(tokens), args.rate, args.duration)
    deadline = time.monotonic() + 30
    while len(streams.arrived) < len(started) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    busy_cpu = cpu_seconds(api_pid) - cpu_start
    latencies = [streams.arrived[m] - t for m, t in started.items() if m in streams.arrived]
    opened = streams.opened
    await streams.close()
    delivered = len(latencies)
    return {
        "streams": opened,
        "rate_per_s": args.rate,
        "duration_s": args.duration,
        "stored": len(started),
        "delivered": delivered,
        "latency_ms": {
            "p50": round(statistics.median(latencies) * 1000, 1),
            "p99": round(percentile(latencies, 0.99) * 1000, 1),
            "max": round(max(latencies) * 1000, 1),
        },
        "api_rss_mb": {
            "before": round(before / 2**20, 1),
            "streams_open": round(with_streams / 2**20, 1),
        },
        "memory_per_idle_stream_kb": round((with_streams - before) / opened / 1024, 1),
        "api_cpu_s": {"idle_phase": round(idle_cpu, 2), "delivery_phase": round(busy_cpu, 2)},
        "cpu_per_event_ms": round((busy_cpu - idle_cpu) / delivered * 1000, 2),
        "cpu_per_event_ms_raw": round(busy_cpu / delivered * 1000, 2),
        "load_average": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--settle", type=float, default=5.0)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/3")
    args = parser.parse_args()

    db_url = services.recreate_database(DB)
    migrations.upgrade(db_url)
    workdir = Path(tempfile.mkdtemp(prefix="fmn-bench-streams-"))
    users = [user_name(i) for i in range(args.streams)]
    oidc = Provider({u: {"groups": []} for u in users}, workdir)
    oidc.start()
    api = None
    try:
        config = write_config(workdir, db_url, args.redis, oidc, users)
        port = free_port()
        api = start_api(config, port, workdir)
        base = f"http://127.0.0.1:{port}"
        tokens = {}
        with httpx.Client(base_url=base, timeout=60) as http:
            for user in users:  # a token each, checked at once (first log-in: the user's row)
                tokens[user] = token = oidc.token(user)
                http.get(
                    "/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}
                ).raise_for_status()
        print(json.dumps(asyncio.run(measure(args, base, api.pid, tokens, db_url)), indent=1))
    finally:
        if api is not None:
            api.terminate()
            api.wait(30)
        oidc.stop()
        services.drop_database(DB)


if __name__ == "__main__":
    main()

"""Email sender benchmark: work items through one `fmn sender email` process to a local SMTP
server, beside the ceiling of a bare aiosmtplib send loop to the same server.

The SMTP server (aiosmtpd, counting and discarding) runs in its own process. The work items are
queued in RabbitMQ first, then the sender is started; throughput is counted from the first mail
the server receives to the last, so process start-up is left out. The sender does all its
production work: parse, idempotency check and mark in Redis, user settings from PostgreSQL,
build the MIME message (text + HTML, signed unsubscribe link), SMTP, ack, batched delivery log.

It also measures the at-least-once window of each mail (docs/reliability.md, open finding 1):
from the SMTP server's acceptance to the moment its sent key is written in Redis, seen through
Redis keyspace notifications (which it switches on in that Redis, so give it one of your own).

Run: .venv/bin/python bench/bench_email.py [--messages 5000] [--connections 8] [--redis URL]
         [--rate N --no-ceiling]   # N work items a second while the sender runs, not queued first
Needs RabbitMQ (guest/guest), Redis and PostgreSQL (trust, user postgres) on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import multiprocessing
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import aiosmtplib
import asyncpg
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fmn.db import migrations
from fmn.senders.email import MailSettings, build_notification
from fmn.sendqueue.topology import declare_send_topology
from fmn.sendqueue.workitem import (
    EmailContent,
    MessageInfo,
    RuleRef,
    WorkItem,
    idempotency_key,
    routing_key,
)
from fmn.transport import Outgoing, make_broker

PG = "postgresql://postgres@127.0.0.1:5432"
AMQP = "amqp://guest:guest@127.0.0.1:5672"
REDIS = "redis://127.0.0.1:6379/0"
SENT_PREFIX = "fmn:senders:sent:"  # fmn.senders.state._sent_key
EXCHANGE = "fmn.send"
FMN = str(Path(sys.executable).parent / "fmn")


# ---- the SMTP server, in its own process ------------------------------------------------------


_MESSAGE_ID = re.compile(rb"\r\nMessage-ID: <([0-9a-f]+)@")


def _smtp_server(port: int, count: Any, first: Any, last: Any, ready: Any, accepted: str) -> None:
    from aiosmtpd.controller import Controller

    log = open(accepted, "a", buffering=1)  # open while the process lives

    class Counter:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            now = time.time()
            with count.get_lock():
                if count.value == 0:
                    first.value = now
                count.value += 1
                last.value = now
            found = _MESSAGE_ID.search(envelope.content or b"")
            if found:
                log.write(f"{found.group(1).decode()} {now}\n")
            return "250 OK"

    controller = Controller(Counter(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    while True:
        time.sleep(3600)


class SMTPSink:
    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.count = multiprocessing.Value("q", 0)
        self.first = multiprocessing.Value("d", 0.0)
        self.last = multiprocessing.Value("d", 0.0)
        self.accepted = tempfile.NamedTemporaryFile("w", suffix=".accepted", delete=False).name
        ready = multiprocessing.Event()
        self.process = multiprocessing.Process(
            target=_smtp_server,
            args=(self.port, self.count, self.first, self.last, ready, self.accepted),
            daemon=True,
        )
        self.process.start()
        ready.wait(30)

    def reset(self) -> None:
        with self.count.get_lock():
            self.count.value = 0
            self.first.value = self.last.value = 0.0

    def rate(self) -> float:
        span = self.last.value - self.first.value
        return (self.count.value - 1) / span if span > 0 else float("nan")

    def accepted_at(self) -> dict[str, float]:
        """When the server accepted each mail, by its Message-ID's hash."""
        lines = Path(self.accepted).read_text().splitlines()
        return {h: float(t) for h, t in (line.split() for line in lines)}

    def stop(self) -> None:
        self.process.terminate()
        Path(self.accepted).unlink(missing_ok=True)


class SentKeyWatch:
    """When each sent key is written, from Redis keyspace notifications (a thread of its own, so
    the time is taken as soon as Redis tells)."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.client.config_set("notify-keyspace-events", "E$")
        db = self.client.connection_pool.connection_kwargs.get("db", 0)
        self.pubsub = self.client.pubsub()
        self.pubsub.subscribe(f"__keyevent@{db}__:set")
        self.written: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while not self._stop.is_set():
            message = self.pubsub.get_message(timeout=0.2)
            if message and message["type"] == "message":
                now = time.time()
                key = message["data"].decode()
                if key.startswith(SENT_PREFIX):
                    self.written[key[len(SENT_PREFIX) :]] = now

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.pubsub.close()
        self.client.close()


def windows(accepted: dict[str, float], written: dict[str, float]) -> list[float]:
    """Seconds from each mail's acceptance to its sent key (the Message-ID is the key's hash,
    fmn.senders.email._message_id)."""
    out = []
    for key, at in written.items():
        digest = hashlib.sha256(key.encode()).hexdigest()[:40]
        if digest in accepted:
            out.append(at - accepted[digest])
    return out


# ---- work items --------------------------------------------------------------------------------


def work_item(n: int) -> WorkItem:
    message_id = str(uuid.uuid4())
    address = f"user{n % 500}@example.org"
    summary = f"alice's foo-1.{n}-1.fc41 completed"
    url = f"https://koji.fedoraproject.org/koji/buildinfo?buildID={n}"
    return WorkItem(
        key=idempotency_key(message_id, "email", address),
        protocol="email",
        address=address,
        user=f"user{n % 500}",
        rules=[RuleRef(id=n % 500, name="My packages")],
        message=MessageInfo(
            id=message_id,
            topic="org.fedoraproject.prod.buildsys.build.state.change",
            sent_at=dt.datetime.now(dt.UTC),
            app_name="koji",
            agent_name="alice",
            summary=summary,
            url=url,
            usernames=["alice"],
            packages=["foo"],
        ),
        email=EmailContent(
            subject=f"[koji] {summary}",
            text=f"{summary}\n\nPackage: foo\nBuild: {url}\n" + "Log line\n" * 20,
            html=f"<p>{summary}</p><p><a href='{url}'>{url}</a></p>" + "<p>Log line</p>" * 20,
            metadata={"Topic": "buildsys.build.state.change", "Application": "koji"},
        ),
    )


# ---- runs --------------------------------------------------------------------------------------


async def ceiling(sink: SMTPSink, messages: int, connections: int) -> tuple[float, float]:
    """A bare aiosmtplib loop: one prebuilt message, sent over `connections` connections."""
    cfg = MailSettings("FMN <fmn@example.org>", "fmn.example.org", "https://x", ["secret"])
    msg = build_notification(work_item(0), cfg)
    sink.reset()

    async def loop(n: int) -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=sink.port, start_tls=False)
        await client.connect()
        for _ in range(n):
            await client.sendmail("fmn@example.org", ["a@example.org"], msg)
        await client.quit()

    per = messages // connections
    cpu = time.process_time()
    await asyncio.gather(*(loop(per) for _ in range(connections)))
    return sink.rate(), (time.process_time() - cpu) / (per * connections)


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def rabbitmqctl(*args: str) -> None:
    command = ["rabbitmqctl", "-q", *args]
    await asyncio.to_thread(subprocess.run, command, check=True, capture_output=True)


async def setup_database(name: str) -> str:
    conn = await asyncpg.connect(f"{PG}/postgres")
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    await asyncio.to_thread(migrations.upgrade, url)
    return url


async def publish_items(broker: Any, items: list[WorkItem], rate: float) -> None:
    """All at once (rate 0), or `rate` a second, 20 times a second."""
    chunk = max(1, round(rate / 20)) if rate else 1000
    started = time.monotonic()
    for n, start in enumerate(range(0, len(items), chunk)):
        if rate:
            await asyncio.sleep(max(0.0, started + n * chunk / rate - time.monotonic()))
        await broker.publish_many(
            EXCHANGE,
            [
                Outgoing(routing_key("email"), i.to_bytes(), message_id=i.key)
                for i in items[start : start + chunk]
            ],
        )


async def through_sender(
    sink: SMTPSink, messages: int, connections: int, redis_url: str, rate: float = 0
) -> tuple[float, float, int, list[float]]:
    vhost = f"fmn-bench-{uuid.uuid4().hex[:8]}"
    await rabbitmqctl("add_vhost", vhost)
    await rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    amqp_url = f"{AMQP}/{vhost}"
    db = f"fmn_bench_email_{os.getpid()}"
    pg_url = await setup_database(db)
    process = None
    try:
        broker = make_broker(amqp_url)
        await broker.connect()
        await declare_send_topology(broker, EXCHANGE, [10.0])
        items = [work_item(n) for n in range(messages)]
        if not rate:
            await publish_items(broker, items, 0)
        sink.reset()
        with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as config:
            config.write(
                f"""
[database]
url = {json.dumps(pg_url)}
[cache]
url = {json.dumps(redis_url)}
[send_queue]
amqp_url = {json.dumps(amqp_url)}
exchange = "{EXCHANGE}"
retry_delays = [10.0]
sender_prefetch = 500
[senders]
digest_threshold = 1000
[senders.email]
smtp_host = "127.0.0.1"
smtp_port = {sink.port}
connections = {connections}
"""
            )
        env = {
            **os.environ,
            "FMN_CONFIG": config.name,
            "FMN_API__SECRET_KEYS": json.dumps([secrets.token_urlsafe(48)]),
        }
        command = [FMN, "--log-level", "WARNING", "sender", "email"]
        watch = SentKeyWatch(redis_url)
        process = subprocess.Popen(command, env=env)
        if rate:
            await asyncio.sleep(10)  # the sender's start-up, before the first item
            await publish_items(broker, items, rate)
        await broker.close()
        deadline = time.monotonic() + 600
        # The count lives in another process: poll it.
        while sink.count.value == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        cpu_start, count_start = process_cpu(process.pid), sink.count.value
        while sink.count.value < messages and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        cpu = (process_cpu(process.pid) - cpu_start) / max(1, sink.count.value - count_start)
        rate = sink.rate()
        await asyncio.sleep(1.5)  # the delivery log's last batch
        watch.stop()
        conn = await asyncpg.connect(f"{PG}/{db}")
        logged = await conn.fetchval("select count(*) from deliveries where status = 'sent'")
        await conn.close()
        return rate, cpu, int(logged), windows(sink.accepted_at(), watch.written)
    finally:
        if process is not None:
            process.terminate()
            process.wait(30)
        await rabbitmqctl("delete_vhost", vhost)
        conn = await asyncpg.connect(f"{PG}/postgres")
        await conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--redis", default=REDIS, help="the sender's Redis (keyspace events on)")
    parser.add_argument(
        "--rate",
        type=float,
        default=0,
        help="work items a second while the sender runs (0: all first)",
    )
    parser.add_argument("--no-ceiling", action="store_true", help="the sender alone")
    args = parser.parse_args()
    sink = SMTPSink()
    try:
        n = args.connections
        rows = []
        if not args.no_ceiling:
            one, one_cpu = await ceiling(sink, args.messages, 1)
            many, many_cpu = await ceiling(sink, args.messages, n)
            rows += [
                ("ceiling: bare aiosmtplib loop, 1 connection", one, one_cpu),
                (f"ceiling: bare aiosmtplib loop, {n} connections", many, many_cpu),
            ]
        rate, cpu, logged, window = await through_sender(
            sink, args.messages, n, args.redis, args.rate
        )
        rows.append((f"fmn sender email, {n} connections", rate, cpu))
        print(f"{'':44} {'mails/s':>8} {'CPU µs/mail':>12}")
        for name, mails, seconds in rows:
            print(f"{name:44} {mails:8.0f} {seconds * 1e6:12.0f}")
        print(f"({args.messages} work items; {logged} 'sent' rows in the delivery log)")
        if window:
            ms = sorted(w * 1000 for w in window)
            mean = statistics.mean(ms)
            at = [ms[min(len(ms) - 1, int(q * len(ms)))] for q in (0.5, 0.9, 0.99)]
            print(
                f"accepted -> sent key written, {len(ms)} mails: mean {mean:.1f} ms,"
                f" p50 {at[0]:.1f}, p90 {at[1]:.1f}, p99 {at[2]:.1f}, max {ms[-1]:.1f} ms;"
                f" mails in the window at a time (rate x mean): {rate * mean / 1000:.2f}"
            )
    finally:
        sink.stop()


if __name__ == "__main__":
    asyncio.run(main())

"""End-to-end consumer benchmark through RabbitMQ.

Starts `fmn consumer` as its own process on a fresh RabbitMQ vhost and PostgreSQL database with
synthetic rules, publishes corpus messages on the bus, and reads the work items from the send
queues. Prints:
- the ceiling: a consumer that does nothing but ack, on the same broker (aio-pika, and
  fedora-messaging's own Twisted consumer, which is how the consumer's transport was chosen);
- sustained throughput: N messages published as fast as possible, until every expected work
  item is in the send queues;
- latency at a fixed rate: bus publish to work item, p50/p99;
- the consumer's CPU per message stage by stage (bench/consumer_stages.py), against the CPU the
  consumer process used per message in the sustained run; with several replicas, each one's CPU;
- a rule change with two replicas: from the `fmn.rule.create.v1` message on the bus until both
  replicas' indexes hold the new rule (read from their Prometheus metrics).

Run: .venv/bin/python bench/bench_consumer.py [--rules 10000] [--messages 20000]
         [--rate 300 1000] [--seconds 10] [--replicas 1] [--stage-messages 5000]
         [--no-ceilings]
Needs RabbitMQ (guest/guest) and PostgreSQL (trust, user postgres) on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import random
import re
import resource
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aio_pika
import aiormq
import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import consumer_stages
from bench.bench_matching import RuleMaker, corpus_messages, synthetic_directory
from fmn.core.settings import ConsumerSettings, DatabaseSettings
from fmn.db import migrations
from fmn.db.session import make_engine, make_sessionmaker
from fmn.directory.local import LocalDirectory
from fmn.rules.incoming import parse_message
from fmn.rules.index import RuleIndex
from fmn.rules.schema import Filters, Rule
from fmn.sendqueue.workitem import PROTOCOLS

PG = "postgresql://postgres@127.0.0.1:5432"
AMQP = "amqp://guest:guest@127.0.0.1:5672"


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


async def setup_database(name: str, rules: list[Rule]) -> str:
    conn = await asyncpg.connect(f"{PG}/postgres")
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    await asyncio.to_thread(migrations.upgrade, url)
    conn = await asyncpg.connect(f"{PG}/{name}")
    owners = sorted({r.user.name for r in rules})
    user_ids = {owner: i + 1 for i, owner in enumerate(owners)}
    defaults = Filters().model_dump()
    await conn.executemany(
        "INSERT INTO users (id, name) VALUES ($1, $2)", [(i, n) for n, i in user_ids.items()]
    )
    await conn.executemany(
        "INSERT INTO rules (id, name, disabled, user_id) VALUES ($1, $2, false, $3)",
        [(r.id, r.name, user_ids[r.user.name]) for r in rules],
    )
    await conn.executemany(
        "INSERT INTO tracking_rules (rule_id, name, params) VALUES ($1, $2, $3)",
        [
            (
                r.id,
                r.tracking_rule.name,
                json.dumps(r.tracking_rule.model_dump(mode="json")["params"]),
            )
            for r in rules
        ],
    )
    await conn.executemany(
        "INSERT INTO generation_rules (id, rule_id) VALUES ($1, $1)", [(r.id,) for r in rules]
    )
    await conn.executemany(
        "INSERT INTO destinations (generation_rule_id, protocol, address) VALUES ($1, $2, $3)",
        [(r.id, d.protocol, d.address) for r in rules for d in r.generation_rules[0].destinations],
    )
    await conn.executemany(
        "INSERT INTO filters (generation_rule_id, name, params) VALUES ($1, $2, $3)",
        [
            (r.id, key, json.dumps(value))
            for r in rules
            for key, value in r.generation_rules[0].filters.model_dump().items()
            if value != defaults[key]
        ],
    )
    await conn.close()
    return url


def expected_items(index: RuleIndex, messages: list[dict[str, Any]]) -> list[int]:
    """Work items each message should produce, by the same engine, offline."""
    return [0 if (p := parse_message(m)).deprecated else len(index.match(p)) for m in messages]


async def bare_ceiling(vhost_url: str, n: int) -> float:
    """Messages/s of a consumer that only acks (aio-pika), on this broker."""
    connection = await aio_pika.connect_robust(vhost_url)
    channel = await connection.channel(publisher_confirms=True)
    await channel.set_qos(prefetch_count=100)
    queue = await channel.declare_queue("bench-ceiling", auto_delete=True)
    body = json.dumps(corpus_messages()[0]["body"]).encode()
    for start in range(0, n, 1000):
        await asyncio.gather(
            *(
                channel.default_exchange.publish(aio_pika.Message(body), routing_key=queue.name)
                for _ in range(min(1000, n - start))
            )
        )
    done = asyncio.Event()
    count = 0
    started = time.perf_counter()

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        nonlocal count
        await message.ack()
        count += 1
        if count == n:
            done.set()

    await queue.consume(on_message)
    await done.wait()
    elapsed = time.perf_counter() - started
    await connection.close()
    return n / elapsed


def fedora_messaging_ceiling(vhost_url: str, n: int) -> float:
    """Messages/s of fedora-messaging's own consumer doing nothing, in a child process."""
    script = Path(__file__).resolve().parent / "fm_ceiling.py"
    result = subprocess.run(
        [sys.executable, str(script), vhost_url, str(n)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return float(result.stdout.strip().splitlines()[-1])


class ItemCounter:
    """Reads the send queues and records when each work item arrived."""

    def __init__(self, connection: aio_pika.abc.AbstractRobustConnection, exchange: str) -> None:
        self.connection = connection
        self.exchange = exchange
        self.count = 0
        self.latencies: list[float] = []
        self.target = 0
        self.reached = asyncio.Event()

    async def start(self) -> None:
        # No acks (the broker counts a work item taken once sent): the load generator shares the
        # two cores with the consumer, so it should cost as little as it can.
        channel = await self.connection.channel()
        for protocol in PROTOCOLS:
            queue = await channel.get_queue(f"{self.exchange}.{protocol}")
            await queue.consume(self.on_item, no_ack=True)

    async def on_item(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        arrived = time.time()
        for sent_at in _SENT_AT.findall(message.body):  # one per work item of the message
            self.latencies.append(arrived - dt.datetime.fromisoformat(sent_at.decode()).timestamp())
            self.count += 1
        if self.count >= self.target:
            self.reached.set()

    def expect(self, total: int) -> None:
        self.target = total
        self.reached.clear()
        if self.count >= total:
            self.reached.set()


async def wait_for_items(counter: ItemCounter, seconds: float) -> None:
    try:
        await asyncio.wait_for(counter.reached.wait(), seconds)
    except TimeoutError:
        raise SystemExit(f"only {counter.count} of {counter.target} work items arrived") from None


# The corpus messages' bodies, serialized once (the same few messages are published again
# and again).
_BODIES: dict[int, bytes] = {}
# Each work item's bus message sent-at, read without decoding the item (the load generator
# should cost little): a quote inside a JSON string is escaped, so this matches only the field.
_SENT_AT = re.compile(rb'"sent_at":"([^"]+)"')


async def publish(channel: aio_pika.abc.AbstractChannel, message: dict[str, Any]) -> None:
    """Publish as fedora-messaging does (persistent, confirmed), through aiormq without waiting
    for each frame's write, so that the load generator takes less of the machine."""
    headers = dict(message["headers"])
    headers["sent-at"] = dt.datetime.now(dt.UTC).isoformat()
    underlay = await channel.get_underlay_channel()
    assert isinstance(underlay, aiormq.Channel)
    body = _BODIES.get(id(message))
    if body is None:
        body = _BODIES[id(message)] = json.dumps(message["body"]).encode()
    await underlay.basic_publish(
        body,
        exchange="amq.topic",
        routing_key=message["topic"],
        properties=aiormq.spec.Basic.Properties(
            message_id=str(uuid.uuid4()),
            headers=headers,
            content_type="application/json",
            delivery_mode=2,
        ),
        wait=False,
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far: its cost per message, whatever else the
    machine is doing (wall-clock rates move with the load of a shared machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def others_cpu_seconds(db_name: str) -> dict[str, float]:
    """CPU so far of what shares the machine with the consumer: RabbitMQ (every beam.smp),
    the PostgreSQL backends of the benchmark's database, and this load generator."""
    spent = {"RabbitMQ": 0.0, "PostgreSQL": 0.0}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
            if b"beam.smp" in command:
                spent["RabbitMQ"] += cpu_seconds(int(proc.name))
            elif command.startswith(b"postgres: ") and f" {db_name} ".encode() in command:
                spent["PostgreSQL"] += cpu_seconds(int(proc.name))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    usage = resource.getrusage(resource.RUSAGE_SELF)
    spent["load generator"] = usage.ru_utime + usage.ru_stime
    return spent


def start_consumer(env: dict[str, str], metrics_port: int, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "fmn", "--log-level", "WARNING", "consumer"],
        env={**env, "FMN_CONSUMER__METRICS_PORT": str(metrics_port)},
        stdout=subprocess.DEVNULL,
        stderr=open(log, "w"),
    )


async def indexed_rules(http: httpx.AsyncClient, port: int) -> int:
    text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    for line in text.splitlines():
        if line.startswith("fmn_consumer_index_rules "):
            return int(float(line.split()[1]))
    raise RuntimeError("no fmn_consumer_index_rules metric")


async def rule_change_seconds(
    db_name: str,
    channel: aio_pika.abc.AbstractChannel,
    ports: list[int],
    owner: str,
    trials: int,
) -> list[float]:
    """For each trial: a new rule written as the API writes it, then announced on the bus; the
    time until every replica's index holds it."""
    conn = await asyncpg.connect(f"{PG}/{db_name}")
    user_id = await conn.fetchval("SELECT id FROM users WHERE name = $1", owner)
    first_id = await conn.fetchval("SELECT max(id) + 1 FROM rules")
    seen: list[float] = []
    async with httpx.AsyncClient(timeout=5) as http:
        for rule_id in range(first_id, first_id + trials):
            before = {port: await indexed_rules(http, port) for port in ports}
            await conn.execute(
                "INSERT INTO rules (id, name, disabled, user_id) VALUES ($1, $2, false, $3)",
                rule_id,
                f"bench rule {rule_id}",
                user_id,
            )
            await conn.execute(
                "INSERT INTO tracking_rules (rule_id, name, params) VALUES ($1, $2, $3)",
                rule_id,
                "users-followed",
                json.dumps([owner]),
            )
            await conn.execute(
                "INSERT INTO generation_rules (id, rule_id) VALUES ($1, $1)", rule_id
            )
            await conn.execute(
                "INSERT INTO destinations (generation_rule_id, protocol, address) "
                "VALUES ($1, 'email', $2)",
                rule_id,
                f"{owner}@example.org",
            )
            started = time.perf_counter()
            await publish(
                channel,
                {
                    "topic": "org.fedoraproject.prod.fmn.rule.create.v1",
                    "headers": {},
                    "body": {"rule": {"id": rule_id}, "user": {"name": owner}},
                },
            )
            waiting = set(ports)
            while waiting:
                if time.perf_counter() - started > 30:
                    raise SystemExit(f"rule {rule_id} not in every replica after 30 s")
                for port in list(waiting):
                    if await indexed_rules(http, port) > before[port]:
                        waiting.discard(port)
                await asyncio.sleep(0.002)
            seen.append(time.perf_counter() - started)
    await conn.close()
    return seen


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument(
        "--rate", type=int, nargs="+", default=[1000], help="messages/s of each latency run"
    )
    parser.add_argument(
        "--replicas", type=int, default=1, help="consumer processes sharing the bus queue"
    )
    parser.add_argument("--seconds", type=int, default=10, help="length of the latency run")
    parser.add_argument(
        "--no-ceilings", action="store_true", help="skip the do-nothing consumers' rates"
    )
    parser.add_argument(
        "--stage-messages", type=int, default=5000, help="messages of the per-stage breakdown"
    )
    args = parser.parse_args()

    # The corpus has a message whose schema fails on it: said once per parse in this process.
    logging.getLogger("fmn.rules.incoming").setLevel(logging.ERROR)
    messages = corpus_messages()
    rng = random.Random(1)
    directory = synthetic_directory(rng, [parse_message(m) for m in messages])
    maker = RuleMaker(directory, [parse_message(m) for m in messages])
    rules = [maker.rule(i) for i in range(1, args.rules + 1)]
    index = RuleIndex(LocalDirectory(directory))
    await index.build(rules)
    per_message = expected_items(index, messages)
    matching = sum(1 for c in per_message if c)
    print(
        f"corpus: {len(messages)} messages, {matching} produce work items "
        f"({sum(per_message)} items per pass); {args.rules} rules over {len(directory.users)} users"
    )

    vhost = f"fmn-bench-{uuid.uuid4().hex[:6]}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    vhost_url = f"{AMQP}/{vhost}"
    db_name = f"fmn_bench_{uuid.uuid4().hex[:6]}"  # other benchmarks may run beside this one
    db_url = await setup_database(db_name, rules)
    workdir = Path(tempfile.mkdtemp(prefix="fmn-bench-"))
    (workdir / "directory.json").write_text(directory.model_dump_json())
    consumers: list[subprocess.Popen[bytes]] = []
    try:
        if not args.no_ceilings:
            ceiling = await bare_ceiling(vhost_url, 20_000)
            print(f"ceiling, aio-pika consumer that only acks: {ceiling:,.0f} msg/s")
            try:
                fm = fedora_messaging_ceiling(vhost_url, 20_000)
                print(f"ceiling, fedora-messaging consumer that does nothing: {fm:,.0f} msg/s")
            except Exception as exc:
                print(f"fedora-messaging ceiling not measured: {exc}")

        env = {
            # The caller's consumer settings (FMN_CONSUMER__*) apply, no other fmn setting.
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith("FMN_") or k.startswith("FMN_CONSUMER__")
            },
            "FMN_DATABASE__URL": db_url,
            "FMN_API__SECRET_KEYS": json.dumps([secrets.token_urlsafe(48)]),
            "FMN_BUS__AMQP_URL": vhost_url,
            "FMN_SEND_QUEUE__AMQP_URL": vhost_url,
            "FMN_CACHE__URL": "mem://",
            "FMN_DIRECTORY__LOCAL_FILE": str(workdir / "directory.json"),
        }
        connection = await aio_pika.connect_robust(vhost_url)
        channel = await connection.channel(publisher_confirms=True)
        ports: list[int] = []

        async def consumer_count() -> int:
            nonlocal channel
            try:
                underlay = await channel.get_underlay_channel()
                return (await underlay.queue_declare("fmn", passive=True)).consumer_count or 0
            except aio_pika.exceptions.AMQPError:  # no queue yet: the first declares it
                channel = await connection.channel(publisher_confirms=True)
                return 0

        async def add_consumer() -> None:
            """One more replica, ready once the shared queue counts its consumer."""
            ports.append(free_port())
            log = workdir / f"consumer-{len(ports)}.log"
            consumers.append(start_consumer(env, ports[-1], log))
            while await consumer_count() < len(consumers):
                if consumers[-1].poll() is not None:
                    raise RuntimeError(log.read_text()[-3000:])
                await asyncio.sleep(0.2)

        started = time.perf_counter()
        while len(consumers) < args.replicas:
            await add_consumer()
        print(
            f"{len(consumers)} consumer(s) ready (index built) in "
            f"{time.perf_counter() - started:.1f} s"
        )

        counter = ItemCounter(connection, "fmn.send")
        await counter.start()

        # Sustained throughput.
        total = 0
        cpu_before = [cpu_seconds(c.pid) for c in consumers]
        others_before = others_cpu_seconds(db_name)
        started = time.perf_counter()
        for start in range(0, args.messages, 500):
            batch = [
                messages[i % len(messages)] for i in range(start, min(start + 500, args.messages))
            ]
            total += sum(per_message[i % len(messages)] for i in range(start, start + len(batch)))
            await asyncio.gather(*(publish(channel, m) for m in batch))
        counter.expect(total)
        await wait_for_items(counter, 600)
        elapsed = time.perf_counter() - started
        each = [
            cpu_seconds(c.pid) - before for c, before in zip(consumers, cpu_before, strict=True)
        ]
        cpu = sum(each)
        others = others_cpu_seconds(db_name)
        print(
            f"throughput: {args.messages:,} messages, {total:,} work items in {elapsed:.2f} s "
            f"= {args.messages / elapsed:,.0f} msg/s; consumer CPU {cpu:.1f} s = "
            f"{cpu / args.messages * 1e6:,.0f} µs per message ({args.messages / cpu:,.0f} msg/s "
            f"per core); load average {os.getloadavg()[0]:.1f}"
        )
        # Each process's CPU over the run, and the share of a core it had: a replica near 100%
        # is bound by its core; replicas below it wait for the broker or the machine.
        print(
            "  CPU of each process over the run: "
            + ", ".join(
                f"consumer {i} {seconds:.1f} s ({seconds / elapsed:.0%} of a core)"
                for i, seconds in enumerate(each, 1)
            )
            + ", "
            + ", ".join(
                f"{name} {others[name] - others_before[name]:.1f} s "
                f"({(others[name] - others_before[name]) / elapsed:.0%})"
                for name in others
            )
            + f"; {os.cpu_count()} cores"
        )
        print(
            "  CPU per message beside the consumer's: "
            + ", ".join(
                f"{name} {(others[name] - others_before[name]) / args.messages * 1e6:,.0f} µs"
                for name in others
            )
        )

        # The same cost, stage by stage, in this process.
        staged = [messages[i % len(messages)] for i in range(args.stage_messages)]
        engine = make_engine(DatabaseSettings(url=db_url))
        breakdown = await consumer_stages.measure(
            staged,
            [json.dumps(m["body"]).encode() for m in staged],
            index,
            make_sessionmaker(engine),
            vhost_url,
            ConsumerSettings(),
        )
        await engine.dispose()
        print(f"stages, µs of CPU per message ({len(staged):,} messages in this process):")
        print("\n".join(breakdown.lines(cpu / args.messages * 1e6)))

        # Latency at fixed rates.
        for rate in args.rate:
            counter.latencies.clear()
            base = counter.count
            cpu_before = sum(cpu_seconds(c.pid) for c in consumers)
            expected = 0
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            in_flight: set[asyncio.Future[None]] = set()
            for i in range(rate * args.seconds):
                await asyncio.sleep(max(0.0, t0 + i / rate - loop.time()))
                expected += per_message[i % len(messages)]
                future = asyncio.ensure_future(publish(channel, messages[i % len(messages)]))
                in_flight.add(future)
                future.add_done_callback(in_flight.discard)
            counter.expect(base + expected)
            await wait_for_items(counter, 120)
            lat = [x * 1000 for x in counter.latencies]
            cpu = sum(cpu_seconds(c.pid) for c in consumers) - cpu_before
            print(
                f"latency at {rate} msg/s for {args.seconds} s ({len(lat)} work items): "
                f"p50 {statistics.median(lat):.1f} ms, p99 {percentile(lat, 99):.1f} ms, "
                f"max {max(lat):.1f} ms; consumer CPU {cpu / (rate * args.seconds) * 1e6:,.0f} "
                f"µs per message; load average {os.getloadavg()[0]:.1f}"
            )

        # A rule change with two replicas (or as many as run).
        while len(consumers) < 2:
            await add_consumer()
        owner = rules[0].user.name
        changes = await rule_change_seconds(db_name, channel, ports, owner, trials=20)
        ms = [x * 1000 for x in changes]
        print(
            f"rule change, {len(consumers)} replicas, bus message until every index holds the "
            f"rule ({len(ms)} changes): p50 {statistics.median(ms):.1f} ms, max {max(ms):.1f} ms"
        )
        await connection.close()
    finally:
        stopping = time.perf_counter()
        for process in consumers:
            process.terminate()
        for process in consumers:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                print(f"consumer {process.pid} still running 60 s after SIGTERM: killed")
                process.kill()
            else:
                print(
                    f"consumer {process.pid} stopped {time.perf_counter() - stopping:.1f} s "
                    "after SIGTERM"
                )
        rabbitmqctl("delete_vhost", vhost)
        conn = await asyncpg.connect(f"{PG}/postgres")
        await conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main())

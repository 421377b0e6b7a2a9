"""Soak: the real system under a steady stream of bus messages while faults are injected, with
every notification accounted for.

N bus messages are published at R messages/s (70% real corpus messages, 30% synthetic ones
whose IRC lines are unique); the notifications they must produce are computed beforehand by the
rule engine (fmn.rules.match). Meanwhile, spread over the run, each fault happens in turn: kill
-9 of a consumer and of each sender (then restarted), RabbitMQ, Redis and PostgreSQL down then
back, the SMTP server refusing mail, the directory failing during an ownership change, the
Matrix homeserver stopped and started again. After
each fault the harness measures how long the system took to catch up; at the end it reports
expected, delivered, duplicated, lost and dead-lettered notifications and the latencies.

    .venv/bin/python bench/soak.py --messages 100000 --rate 150            # private services
    .venv/bin/python bench/soak.py --messages 3000 --rate 40 --mode proxy  # the machine's, proxied

"restart" mode runs RabbitMQ, Redis and PostgreSQL instances of its own (bench/soak_services.py)
and really stops (or kill -9s) and starts them; it removes them at the end whatever happened.
"proxy" mode uses the machine's services through TCP proxies, which it cuts. Exit status 0 when
nothing was lost or duplicated, every dead letter is explained and every fault was recovered
from.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import signal
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import aio_pika
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.soak_faults import (
    CLUSTER_FAULTS,
    CRASH_NAMES,
    FAULT_NAMES,
    MATRIX_FAULTS,
    Context,
    Fault,
    make_fault,
)
from bench.soak_report import (
    DeadLetterInfo,
    DeliveryRows,
    FaultResult,
    Report,
    Tally,
    describe_duplicates,
    explain,
    in_acceptance_window,
    latency_summary,
)
from bench.soak_system import BUS_QUEUE, EXCHANGE, SoakConfig, System, connect_failover
from bench.soak_world import (
    Message,
    World,
    build_world,
    corpus_templates,
    make_messages,
    ownership_change,
)
from fmn.db.models import Delivery
from fmn.sendqueue.deadletters import list_dead_letters
from fmn.transport import make_broker

Log = Callable[[str], None]
More = Callable[[], Awaitable[list[int]]]


class Publisher:
    """Publishes the world's messages as fedora-messaging does (persistent, confirmed), each
    tried again until the broker confirms it, so a broker outage delays but loses nothing."""

    def __init__(self, world: World, tally: Tally) -> None:
        self.url = ""
        self.world = world
        self.tally = tally
        self.published = 0
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None
        self._in_flight = asyncio.Semaphore(32)
        # Messages not confirmed yet, with their first attempt's time.
        self.pending: dict[int, float] = {}

    def waiting_since(self, moment: float) -> bool:
        """Whether a message first tried before `moment` is still not confirmed."""
        return any(t <= moment for t in self.pending.values())

    async def connect(self, urls: list[str]) -> None:
        """To RabbitMQ at `urls` (known once the system has started): a cluster's nodes, the
        next one's after a lost connection, as fmn's processes."""
        self.url = urls[0]
        self._connection = await connect_failover(urls, "soak publisher")
        channel = await self._connection.channel(publisher_confirms=True)
        self._exchange = await channel.get_exchange("amq.topic")

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def _publish(self, index: int) -> None:
        assert self._exchange is not None
        message = self.world.messages[index]
        # From the first attempt: a message the broker could not take yet is already late.
        first = self.pending[index] = time.time()
        while True:
            headers = {**message.headers, "sent-at": dt.datetime.now(dt.UTC).isoformat()}
            outgoing = aio_pika.Message(
                message.body,
                message_id=message.id,
                headers=headers,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            )
            try:
                await asyncio.wait_for(self._exchange.publish(outgoing, message.topic), 10)
            except (aio_pika.exceptions.AMQPError, ConnectionError, TimeoutError, RuntimeError):
                await asyncio.sleep(0.5)  # the broker is away: the same message again, later
                continue
            self.tally.published_at[index] = first
            del self.pending[index]
            self.published += 1
            return

    async def _spawn(self, index: int) -> asyncio.Task[None]:
        await self._in_flight.acquire()
        task = asyncio.create_task(self._publish(index))
        task.add_done_callback(lambda _: self._in_flight.release())
        return task

    async def run(self, rate: float, first: int, until: asyncio.Event, more: More) -> None:
        """At `rate` messages/s: the world's `first` messages, then more (from `more`, made as
        needed) until `until` is set, so that every fault has traffic to disturb."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        stream = list(range(first))
        tasks = []
        n = 0
        while n < len(stream) or not until.is_set():
            if n == len(stream):
                stream += await more()
            delay = started + n / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(await self._spawn(stream[n]))
            n += 1
        await asyncio.gather(*tasks)

    async def extra(self, messages: list[Message]) -> None:
        """Publish more messages now, their notifications added to the expected ones."""
        start = len(self.world.messages)
        await self.world.add_messages(messages)
        await asyncio.gather(*(self._publish(i) for i in range(start, start + len(messages))))


async def _collect(system: System, tally: Tally, crashes: list[str], log: Log) -> None:
    while True:
        tally.add(system.receipts())
        for crash in system.check_processes():
            crashes.append(crash)
            log(f"!! {crash}; started again")
        await asyncio.sleep(0.2)


async def _caught_up(
    tally: Tally, publisher: Publisher, after: float, lifted: float, timeout: float
) -> float | None:
    """Seconds from `lifted` until every message tried before it was published and every
    notification of those published between `after` and `lifted` arrived (None if not within
    `timeout`)."""
    deadline = time.time() + timeout
    while publisher.waiting_since(lifted) or tally.missing(after, lifted):
        if time.time() > deadline:
            return None
        await asyncio.sleep(0.25)
    return max(0.0, time.time() - lifted)


async def _run_faults(
    faults: list[Fault],
    ctx: Context,
    tally: Tally,
    publisher: Publisher,
    config: SoakConfig,
    log: Log,
) -> list[FaultResult]:
    """Faults spread over the publishing time, each after the previous one recovered."""
    results = []
    duration = config.messages / config.rate
    spacing = duration / (len(faults) + 1)
    t0 = window = time.time()
    for n, fault in enumerate(faults, start=1):
        await asyncio.sleep(max(0.0, t0 + n * spacing - time.time()))
        log(f"-> {fault.name}")
        injected = time.time()
        await fault.inject(ctx)
        await asyncio.sleep(config.fault_seconds)
        await fault.lift(ctx)
        lifted = time.time()
        recovery = await _caught_up(tally, publisher, window, lifted, config.recovery_timeout)
        try:
            await ctx.system.wait_ready(timeout=config.recovery_timeout)
            ready: float | None = time.time() - lifted
        except RuntimeError as exc:
            log(f"!! not every process is back: {str(exc)[:2000]}")
            ready = None
        worst = tally.latencies((injected, lifted))
        result = FaultResult(fault.name, injected, lifted, recovery, max(worst, default=None))
        result.ready = ready
        result.window = (window, time.time())
        window = result.window[1]
        results.append(result)
        shown = "NOT" if recovery is None else f"{recovery:.1f} s"
        log(f"<- {fault.name}: recovered in {shown}")
    return results


async def _drain(tally: Tally, quiet: float, log: Log) -> None:
    """Until everything expected arrived, or nothing arrived for `quiet` seconds."""
    last, since = len(tally.missing()), time.time()
    while (missing := len(tally.missing())) and time.time() - since < quiet:
        if missing != last:
            last, since = missing, time.time()
        await asyncio.sleep(0.5)
    log(f"drained: {missing} notification(s) missing")
    await asyncio.sleep(3)  # a duplicate on its way still counts


async def _dead_letters(system: System, world: World) -> tuple[list[DeadLetterInfo], int]:
    broker = make_broker(system.amqp_urls, "soak dead letters")
    await broker.connect()
    try:
        letters = await list_dead_letters(broker, EXCHANGE, limit=10_000_000)
        rejected = await broker.queue_size(f"{BUS_QUEUE}.rejected")
    finally:
        await broker.close()
    by_key = {n.key: n for n in world.notifications}
    infos = []
    for letter in letters:
        info = DeadLetterInfo(
            letter.item.key if letter.item else None, letter.protocol, letter.reason, ""
        )
        info.explanation = explain(info, by_key)
        infos.append(info)
    return infos, rejected


def _duplicated_keys(tally: Tally, most: int = 20) -> list[str]:
    by_ident = {n.ident: n.key for n in tally.world.notifications}
    return [by_ident[i] for i, times in tally.arrivals.items() if len(times) > 1][:most]


async def _delivery_log(system: System, keys: list[str]) -> DeliveryRows:
    """The senders' delivery log rows of these notifications (diagnostics; empty if the
    database cannot be read)."""
    rows: DeliveryRows = {}
    if not keys:
        return rows
    engine = create_async_engine(system.pg_direct, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(
                select(Delivery.idempotency_key, Delivery.created_at, Delivery.status)
                .add_columns(Delivery.attempt)
                .where(Delivery.idempotency_key.in_(keys))
            )
            for key, at, status, attempt in result:
                stamp = at.replace(tzinfo=at.tzinfo or dt.UTC).timestamp()
                rows.setdefault(key, []).append((stamp, str(status), attempt))
    except Exception as exc:  # diagnostics only: the report must still be written
        print(f"soak: could not read the delivery log: {exc!r}")
    finally:
        await engine.dispose()
    return rows


async def run_soak(config: SoakConfig, log: Log = print) -> Report:
    started = time.time()
    templates = corpus_templates()
    world = build_world(templates, matrix_users=3 if config.matrix else 0, seed=config.seed)
    await world.add_messages(make_messages(templates, config.messages, seed=config.seed))
    log(
        f"world: {len(world.rules)} rules, {config.messages:,} messages, "
        f"{len(world.notifications):,} notifications expected"
    )
    tally = Tally(world)
    system = System(config, world)
    crashes: list[str] = []
    injected: list[Fault] = []
    tasks: list[asyncio.Task[None]] = []
    publisher = Publisher(world, tally)
    changes = iter(range(1, 1_000_000))
    try:
        await system.start(log)
        log(f"system ready in {time.time() - started:.0f} s ({config.mode} mode), in {system.dir}")
        await publisher.connect(system.amqp_urls)
        ctx = Context(system, publisher.extra)
        faults = [
            make_fault(
                name,
                config.mode,
                lambda: ownership_change(world, system.directory_url, next(changes)),
            )
            for name in config.faults
        ]
        tasks.append(asyncio.create_task(_collect(system, tally, crashes, log)))
        faults_done = asyncio.Event()

        async def more() -> list[int]:
            start = len(world.messages)
            extra = make_messages(templates, 500, start=start, seed=config.seed)
            await world.add_messages(extra)
            return list(range(start, start + len(extra)))

        publishing = asyncio.create_task(
            publisher.run(config.rate, config.messages, faults_done, more)
        )
        injected.extend(faults)
        try:
            results = await _run_faults(faults, ctx, tally, publisher, config, log)
        finally:
            faults_done.set()
        await publishing
        log(f"published {publisher.published:,} messages")
        await _drain(tally, config.recovery_timeout, log)
        letters, rejected = await _dead_letters(system, world)
        # While the database is still there (restart mode removes it with the services).
        deliveries = await _delivery_log(system, _duplicated_keys(tally))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for fault in injected:
            try:
                await fault.restore(Context(system, publisher.extra))
            except Exception as exc:  # the others must still be restored
                log(f"!! could not restore after {fault.name}: {exc!r}")
        await publisher.close()
        await system.stop()
    dead_keys = {d.key for d in letters}
    lost = [n for n in tally.missing() if n.key not in dead_keys]
    lost += [
        n for n in world.notifications if n.planned_dead is not None and n.key not in dead_keys
    ]
    for result in results:
        start, end = result.window
        result.lost = len([n for n in lost if start <= tally.published_at.get(n.message, 0) < end])
    arrived = list(tally.arrivals.values())
    kills = {name: p.killed_at for name, p in system.processes.items()}
    by_ident = {n.ident: n for n in world.notifications}
    return Report(
        messages=len(world.messages),
        expected=len(world.notifications),
        expected_by_protocol=dict(Counter(n.protocol for n in world.notifications)),
        delivered=len(arrived),
        duplicated=sum(1 for times in arrived if len(times) > 1),
        extra_copies=sum(len(times) - 1 for times in arrived),
        lost=len(lost),
        lost_examples=[f"{n.key} ({n.ident[:80]})" for n in lost[:10]],
        duplicate_examples=describe_duplicates(
            tally,
            results,
            deliveries,
            {name: p.started_at[1:] for name, p in system.processes.items()},
            kills=kills,
        ),
        acceptance_window_duplicates=sum(
            1
            for ident, times in tally.arrivals.items()
            if len(times) > 1 and in_acceptance_window(by_ident[ident], times, kills)
        ),
        dead_lettered=len(letters),
        dead_letters=letters,
        unexplained_dead_letters=sum(1 for d in letters if d.explanation.startswith("UNEXPLAINED")),
        unexpected_arrivals=sum(tally.unexpected.values()),
        rejected_bus_messages=rejected,
        faults=results,
        latency=latency_summary(tally.latencies()),
        calm_latency=latency_summary(
            tally.latencies(*((f.window[0], f.injected_at) for f in results))
        ),
        crashes=crashes,
        seconds=time.time() - started,
        settings={
            "mode": config.mode,
            "rate": config.rate,
            "fault_seconds": config.fault_seconds,
            "retry_delays": config.retry_delays,
            "cluster": config.cluster,
        },
    )


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=150.0, help="bus messages per second")
    parser.add_argument("--mode", choices=["restart", "proxy"], default="restart")
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="a three-node RabbitMQ cluster, fmn's queues quorum queues (restart mode); the "
        f"faults default to {','.join(CLUSTER_FAULTS)}",
    )
    parser.add_argument(
        "--faults",
        default=None,
        help="comma-separated, in order (default: all of "
        f"{', '.join(FAULT_NAMES + CRASH_NAMES)}; the -kill ones are a crash in restart mode)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="times through the fault list")
    parser.add_argument("--fault-seconds", type=float, default=10.0)
    parser.add_argument("--recovery-timeout", type=float, default=120.0)
    parser.add_argument("--workdir", type=Path, default=Path("soak-run"))
    parser.add_argument("--redis-db", type=int, default=0)
    parser.add_argument("--irc-lease", type=float, default=30.0, help="senders.instance_lease")
    parser.add_argument(
        "--no-matrix", action="store_true", help="no homeserver and no `fmn sender matrix`"
    )
    parser.add_argument("--json", type=Path, help="also write the report here")
    return parser.parse_args()


def main() -> int:
    args = _arguments()
    if args.cluster and args.mode != "restart":
        raise SystemExit("soak: --cluster runs the soak's own nodes (--mode restart)")
    default = CLUSTER_FAULTS if args.cluster else FAULT_NAMES + CRASH_NAMES
    chosen = args.faults if args.faults is not None else ",".join(default)
    faults = [f for f in chosen.split(",") if f] * args.rounds
    if args.no_matrix:
        faults = [f for f in faults if f not in MATRIX_FAULTS]
    config = SoakConfig(
        messages=args.messages,
        rate=args.rate,
        mode=args.mode,
        faults=faults,
        fault_seconds=args.fault_seconds,
        recovery_timeout=args.recovery_timeout,
        workdir=args.workdir,
        redis_db=args.redis_db,
        irc_lease=args.irc_lease,
        matrix=not args.no_matrix,
        cluster=args.cluster,
    )

    # The harness's own broker connections say so at every broker restart: not news here.
    for noisy in ("aio_pika", "aiormq"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)

    def say(line: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)

    async def main_task() -> Report:
        task = asyncio.current_task()
        assert task is not None
        # SIGTERM like Ctrl-C: cancelled, so that every `finally` stops what it started.
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await run_soak(config, say)

    report = asyncio.run(main_task())
    print(report.text())
    if args.json:
        args.json.write_text(json.dumps(report.as_json(), indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""The consumer process.

Bus messages are taken from the shared queue in small batches. For each batch: parse, match on
the in-memory rule index, render, publish every work item with pipelined publisher confirms,
archive the messages, and only then acknowledge them. Anything that fails on the way (the send
broker, the database) leaves the batch unacknowledged and is tried again: a message waits, it is
never dropped. A message that cannot be read at all is dead-lettered with a log line.

Each replica also has an exclusive queue for control messages (rule, ownership and membership
changes) so that every replica updates its own index.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import gc
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import orjson
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fmn.archive import GeneratedCounts, archive_batch, prune_archive
from fmn.consumer import metrics
from fmn.consumer.control import CONTROL_BINDINGS, rule_change
from fmn.core.owners import team_of
from fmn.core.settings import Settings
from fmn.db import models
from fmn.db.session import make_engine, make_sessionmaker
from fmn.directory import (
    Directory,
    DirectoryUnavailable,
    invalidate_all,
    invalidate_on_message,
    make_directory,
)
from fmn.notify import build_work_items
from fmn.rules import store, teams
from fmn.rules.incoming import BadMessage, ParsedMessage, parse_message
from fmn.rules.index import RuleIndex
from fmn.sendqueue.topology import declare_send_topology
from fmn.sendqueue.workitem import WorkItem, pack
from fmn.transport import Broker, Delivery, PublishFailed, QueueSpec, bus_broker, send_broker

log = logging.getLogger(__name__)

# The cyclic garbage collector's thresholds once started: a message allocates a few dozen
# containers that reference counting frees, and the default first threshold (700) ran a
# collection every few messages; measured in process, collections cost more than the rest of the
# message (bench/consumer_stages.py). What lives for good is frozen after each index build.
GC_THRESHOLDS = (20_000, 50, 100)

# A stop waits this long for the tasks, the last counts and the connections to close.
SHUTDOWN_SECONDS = 10


class ConsumerFailed(Exception):
    """One of the consumer's tasks ended while it was not stopping."""


# Failures that make a batch wait and try again, rather than lose anything.
TRANSIENT = (PublishFailed, SQLAlchemyError, DirectoryUnavailable, ConnectionError, OSError)


# Digits to "0", anything else to " ": a run of 19 zeros is a number orjson may not keep whole.
_DIGITS = bytes(48 if 48 <= byte <= 57 else 32 for byte in range(256))
_LONG_NUMBER = b"0" * 19


def _loads(body: bytes) -> Any:
    """JSON as Python's json (fedora-messaging's) reads it, through orjson where that gives the
    same: orjson refuses NaN, a BOM, UTF-16 and lone surrogates (Python's json then reads them),
    and reads an integer past 64 bits as a float (so a body with 19 digits in a row, which may
    hold one, goes to Python's json). Both are rare; every other body pays orjson's price."""
    if _LONG_NUMBER not in body.translate(_DIGITS):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    return json.loads(body)


def decode(delivery: Delivery, max_body_bytes: int) -> dict[str, Any]:
    """A delivery in fedora-messaging's serialized form; BadMessage if it cannot be one."""
    ident = delivery.message_id or "(no id)"
    if len(delivery.body) > max_body_bytes:
        raise BadMessage(
            f"message {ident}: body of {len(delivery.body)} bytes is over the limit "
            f"of {max_body_bytes}"
        )
    try:
        body = _loads(delivery.body)
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, or nested too deep
        raise BadMessage(f"message {ident}: the body is not JSON ({exc!r:.200})") from None
    return {
        "topic": delivery.routing_key,
        "headers": delivery.headers,
        "id": delivery.message_id,
        "body": body,
    }


class Consumer:
    def __init__(
        self,
        settings: Settings,
        *,
        directory: Directory | None = None,
        bus: Broker | None = None,
        send: Broker | None = None,
        sessionmaker: async_sessionmaker[AsyncSession] | None = None,
        name: str = "fmn consumer",
    ) -> None:
        self.settings = settings
        self.directory = directory or make_directory(settings)
        self.bus = bus or bus_broker(settings.bus, name)
        self.send = send or send_broker(settings.send_queue, f"{name} (send)")
        self._engine = None
        if sessionmaker is None:
            self._engine = make_engine(settings.database)
            sessionmaker = make_sessionmaker(self._engine)
        self.sessionmaker = sessionmaker
        self.index = RuleIndex(self.directory)
        self.counts = GeneratedCounts()
        self.control_queue = ""
        # Cleared while a directory change could not be applied: matching on a stale index would
        # turn a failed look-up into "not owned", so bus messages wait instead.
        self._ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        # Messages whose work items are confirmed, waiting to be archived and acked.
        self._to_archive: list[tuple[Delivery, ParsedMessage, dict[str, Any]]] = []
        self._archive_due = asyncio.Event()
        self._disabled_owners: set[str] = set()
        self._mute_checked = dt.datetime.now(dt.UTC)

    # -- life cycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        await self.bus.connect()
        if self.send is not self.bus:
            await self.send.connect()
        queue = self.settings.bus.queue
        rejected = f"{queue}.rejected"
        await self.bus.declare_queue(QueueSpec(rejected))
        await self.bus.declare_queue(
            QueueSpec(
                queue,
                arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": rejected},
                bindings=[(self.settings.bus.exchange, k) for k in self.settings.bus.routing_keys],
            )
        )
        self.control_queue = await self.bus.declare_queue(
            QueueSpec(
                "",
                durable=False,
                exclusive=True,
                auto_delete=True,
                bindings=[(self.settings.bus.exchange, key) for key in CONTROL_BINDINGS],
            )
        )
        await declare_send_topology(
            self.send, self.settings.send_queue.exchange, self.settings.send_queue.retry_delays
        )
        await self._retrying("build the rule index", self.rebuild)
        gc.set_threshold(*GC_THRESHOLDS)
        self._ready.set()

    async def run(self) -> None:
        """Consume until stop() is called."""
        inbox: asyncio.Queue[Delivery] = asyncio.Queue()
        consumer = self.settings.consumer
        work: dict[str, Coroutine[Any, Any, None]] = {
            "receive": self._receive(self.settings.bus.queue, inbox),
            "handle batches": self._handle_batches(inbox),
            "archive and ack": self._archive_and_ack(),
            "handle control": self._handle_control(),
            "flush counts": self._every(consumer.counts_interval, self.flush),
            "rebuild": self._every(consumer.rebuild_interval, self.rebuild),
            "prune": self._every(self.settings.archive.prune_interval, self.prune),
            "unmute": self._every(consumer.unmute_interval, self.unmute),
        }
        self._tasks = [asyncio.create_task(coro, name=name) for name, coro in work.items()]
        stop = asyncio.create_task(self._stopping.wait())
        done, _ = await asyncio.wait([stop, *self._tasks], return_when=asyncio.FIRST_COMPLETED)
        # A task that raised, or that ended while nobody asked the consumer to stop.
        failed = [
            task
            for task in done
            if task is not stop
            and (task.cancelled() or task.exception() is not None or not self._stopping.is_set())
        ]
        for task in failed:
            error = None if task.cancelled() else task.exception()
            log.error("consumer task %r ended", task.get_name(), exc_info=error)
        stop.cancel()
        await self._shutdown()
        if failed:
            # An error exit, so that a supervisor restarting on failure (systemd's
            # Restart=on-failure) starts the replica again.
            raise ConsumerFailed(f"the consumer task {failed[0].get_name()!r} ended")

    async def stop(self) -> None:
        self._stopping.set()

    async def _shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        try:
            async with asyncio.timeout(SHUTDOWN_SECONDS):
                await asyncio.gather(*self._tasks, return_exceptions=True)
                with contextlib.suppress(*TRANSIENT):
                    await self.flush()
                await self._close()
        except TimeoutError:
            # Nothing is lost by leaving now: what is unacknowledged goes back to the queue
            # when the connections drop, and the counts not flushed are statistics.
            log.warning(
                "shutdown took over %d s (broker or database not answering); leaving without "
                "waiting for them",
                SHUTDOWN_SECONDS,
            )

    async def _close(self) -> None:
        await self.bus.close()
        if self.send is not self.bus:
            await self.send.close()
        if self._engine is not None:
            await self._engine.dispose()

    async def _retrying(self, what: str, action: Callable[[], Awaitable[Any]]) -> None:
        while not self._stopping.is_set():
            try:
                await action()
            except TRANSIENT as exc:
                log.warning("could not %s, trying again: %s", what, exc)
                metrics.WAITING.set(1)
                await self._sleep(self.settings.consumer.retry_delay)
            else:
                metrics.WAITING.set(0)
                return

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _every(self, seconds: float, action: Callable[[], Awaitable[Any]]) -> None:
        while True:
            await self._sleep(seconds)
            if self._stopping.is_set():
                # The sleep ended for a stop: not a time to act. A rebuild of the index here
                # held every SIGTERM for a rebuild's time, over a minute on a loaded machine.
                return
            try:
                await action()
            except TRANSIENT as exc:
                log.warning("periodic %s failed: %s", action.__name__, exc)

    # -- the rule index ------------------------------------------------------------------------

    async def rebuild(self) -> None:
        started = time.perf_counter()
        async with self.sessionmaker.begin() as session:
            self._mute_checked = dt.datetime.now(dt.UTC)
            read = await store.read_rules(
                session, enabled_only=True, counts=False, unmuted_at=self._mute_checked
            )
            verified = await teams.verified_destinations(session)
        rules = teams.deliverable((stored.rule for stored in read.rules), verified)
        await self.index.build(rules)
        # The index lives as long as the process: keep the cyclic GC from rescanning it.
        gc.freeze()
        metrics.INDEX_BUILD_SECONDS.set(time.perf_counter() - started)
        metrics.INDEX_RULES.set(len(self.index))
        await self._disable_gone_owners()

    async def _disable_gone_owners(self) -> None:
        """Rules of users gone from the directory are disabled, as FMN 3 does (#826)."""
        gone = set(self.index.gone_users) - self._disabled_owners
        if not gone:
            return
        async with self.sessionmaker.begin() as session:
            owners = select(models.User.id).where(models.User.name.in_(gone))
            await session.execute(
                update(models.Rule)
                .where(models.Rule.user_id.in_(owners), models.Rule.disabled.is_(False))
                .values(disabled=True)
            )
        log.info("disabled the rules of users gone from the directory: %s", sorted(gone))
        self._disabled_owners |= gone

    def _control_queue_back(self) -> None:
        """The control queue, exclusive to this replica's connection, went with it: rule and
        directory changes announced until it was declared again never reached it, and the
        cached directory answers they would have invalidated (shared by every process) are
        still there. Now that the queue is back, those answers are forgotten and the index is
        rebuilt from the database and the directory."""
        log.warning(
            "rule and directory changes may have been missed while disconnected; forgetting the "
            "cached directory answers and rebuilding the index"
        )
        self._tasks.append(asyncio.create_task(self._catch_up()))

    async def _catch_up(self) -> None:
        forget = functools.partial(invalidate_all, self.directory)
        await self._retrying("forget the cached directory answers", forget)
        await self._retrying("rebuild the rule index", self.rebuild)

    async def _handle_control(self) -> None:
        consuming = self.bus.consume(
            self.control_queue, prefetch=1, on_resume=self._control_queue_back
        )
        async for delivery in consuming:
            try:
                await self.apply_control(delivery)
            except TRANSIENT as exc:
                # Directory or database down: bus messages wait until the change is applied.
                self._ready.clear()
                metrics.WAITING.set(1)
                log.warning("control message %s waits: %s", delivery.routing_key, exc)
                await self._sleep(self.settings.consumer.retry_delay)
                await delivery.nack(requeue=True)
                continue
            except BadMessage as exc:
                log.warning("unreadable control message ignored: %s", exc)
            except Exception:
                # Whatever else a message can cause must not stop this replica; the periodic
                # rebuild of the index catches up with a change left out here.
                log.exception("control message %s could not be applied", delivery.routing_key)
            self._ready.set()
            metrics.WAITING.set(0)
            await delivery.ack()

    async def apply_control(self, delivery: Delivery) -> None:
        data = decode(delivery, self.settings.consumer.max_body_bytes)
        topic, body = data["topic"], data["body"]
        change = rule_change(topic, body)
        if change is not None:
            await self._reload_user(change.username)
        else:
            directory_change = await invalidate_on_message(
                self.directory,
                topic,
                body if isinstance(body, dict) else {},
                distgit_url=self.settings.directory.distgit_url,
            )
            if not directory_change:
                return
            await self.index.apply_directory_change(directory_change)
        metrics.INDEX_RULES.set(len(self.index))
        await self._disable_gone_owners()
        log.info("index updated after %s", topic)

    async def _reload_user(self, username: str) -> None:
        async with self.sessionmaker.begin() as session:
            read = await store.read_rules(
                session,
                username=username,
                enabled_only=True,
                counts=False,
                unmuted_at=dt.datetime.now(dt.UTC),
            )
            group = team_of(username)
            verified = await teams.verified_destinations(session, [group] if group else [])
        rules = teams.deliverable((stored.rule for stored in read.rules), verified)
        await self.index.set_user_rules(username, rules)
        self._disabled_owners.discard(username)

    async def unmute(self) -> None:
        """Put back the rules whose mute ended since the last check (a mute starting is an
        fmn.rule.update message, handled like any rule change)."""
        now = dt.datetime.now(dt.UTC)
        async with self.sessionmaker.begin() as session:
            owners = await store.owners_unmuted_between(session, self._mute_checked, now)
        for username in owners:
            await self._reload_user(username)
        self._mute_checked = now

    # -- bus messages --------------------------------------------------------------------------

    async def _receive(self, queue: str, inbox: asyncio.Queue[Delivery]) -> None:
        # Every batch is settled within moments, so acks can go out in runs.
        async for delivery in self.bus.consume(
            queue, prefetch=self.settings.bus.prefetch_count, acks_in_order=True
        ):
            inbox.put_nowait(delivery)

    async def _handle_batches(self, inbox: asyncio.Queue[Delivery]) -> None:
        """Collect batches and handle several at once: while one waits for its confirms and its
        database write, the next is parsed and matched."""
        size = self.settings.consumer.batch_size
        slots = asyncio.Semaphore(self.settings.consumer.concurrent_batches)
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                batch = [await inbox.get()]
                if inbox.qsize() < size - 1:
                    # One wait for company, not a timed get per message (each made a task).
                    await asyncio.sleep(self.settings.consumer.batch_wait)
                while len(batch) < size and not inbox.empty():
                    batch.append(inbox.get_nowait())
                await self._ready.wait()
                await slots.acquire()
                task = asyncio.create_task(self._handle_batch_safely(batch))
                running.add(task)
                task.add_done_callback(lambda t: self._batch_done(t, running, slots))
        finally:
            for task in running:
                task.cancel()  # unacknowledged messages go back to the queue

    @staticmethod
    def _batch_done(
        task: asyncio.Task[None], running: set[asyncio.Task[None]], slots: asyncio.Semaphore
    ) -> None:
        running.discard(task)
        slots.release()

    async def _handle_batch_safely(self, batch: list[Delivery]) -> None:
        try:
            await self.handle_batch(batch)
        except Exception:
            # A bug, not a bad message (those are dead-lettered one by one): hand the batch
            # back to the broker rather than leave it unacknowledged.
            log.exception("a batch of %d messages failed; returned to the queue", len(batch))
            for delivery in batch:
                with contextlib.suppress(Exception):
                    await delivery.nack(requeue=True)

    async def handle_batch(self, batch: list[Delivery]) -> None:
        started = time.perf_counter()
        good: list[tuple[Delivery, ParsedMessage, dict[str, Any]]] = []
        items: list[WorkItem] = []
        matched = 0
        for delivery in batch:
            try:
                data = decode(delivery, self.settings.consumer.max_body_bytes)
                parsed = parse_message(data)
                notifications = self._notifications(parsed)
                if notifications:
                    matched += 1
                    items.extend(notifications)
            except Exception as exc:  # one bad message must not stop the others
                log.warning("message %s refused: %s", delivery.message_id, exc)
                metrics.MESSAGES.labels("rejected").inc()
                await delivery.nack(requeue=False)
                continue
            good.append((delivery, parsed, data))
        metrics.MATCHED.inc(matched)  # once a batch: every inc of a counter takes a lock
        # Publishing and archiving are tried again each on its own: a database outage while
        # archiving must not publish the batch's work items again and again (senders would drop
        # the copies, but every copy is still a message to carry and check).
        await self._retrying("publish", lambda: self._publish(items))
        if self._stopping.is_set():
            return  # unacknowledged: the broker delivers them again
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        self._to_archive.extend(good)
        self._archive_due.set()

    async def _archive_and_ack(self) -> None:
        """Archive the handled messages of several batches in one transaction, then ack them.
        The archive is for previews, so it can wait for company (consumer.archive_wait); a
        transaction per batch cost more than the batch itself at moderate rates."""
        while True:
            await self._archive_due.wait()
            if len(self._to_archive) < self.settings.consumer.batch_size:
                await self._sleep(self.settings.consumer.archive_wait)
            self._archive_due.clear()
            chunk, self._to_archive = self._to_archive, []
            if not chunk:
                continue
            await self._retrying("archive", functools.partial(self._archive, chunk))
            if self._stopping.is_set():
                return  # unacknowledged: the broker delivers them again
            for delivery, _, _ in chunk:
                await delivery.ack()
            metrics.MESSAGES.labels("handled").inc(len(chunk))

    def _notifications(self, parsed: ParsedMessage) -> list[WorkItem]:
        matches = self.index.match(parsed)  # nothing for a deprecated message
        if not matches:
            return []
        for match in matches:
            self.counts.add(match.rule_ids)
        return build_work_items(parsed, matches)

    async def _publish(self, items: list[WorkItem]) -> None:
        if not items:
            return
        started = time.perf_counter()
        await self.send.publish_many(
            self.settings.send_queue.exchange,
            pack(items, self.settings.consumer.items_per_message),
        )
        metrics.PUBLISH_SECONDS.observe(time.perf_counter() - started)
        for protocol, count in Counter(item.protocol for item in items).items():
            metrics.NOTIFICATIONS.labels(protocol).inc(count)

    async def _archive(self, good: list[tuple[Delivery, ParsedMessage, dict[str, Any]]]) -> None:
        if good:
            await archive_batch(
                self.sessionmaker, [(parsed, data, d.body) for d, parsed, data in good]
            )

    # -- periodic writes -----------------------------------------------------------------------

    async def flush(self) -> None:
        if len(self.counts):
            async with self.sessionmaker.begin() as session:
                await self.counts.flush(session)

    async def prune(self) -> None:
        archive = self.settings.archive
        pruned, batches = await prune_archive(
            self.sessionmaker, archive.retention_days, archive.prune_batch
        )
        if pruned:
            log.info("archive: pruned %d messages in %d batches", pruned, batches)

"""The sender loop shared by every protocol.

A message from the protocol's queue carries one work item or several; each is handled on its
own (fmn.sendqueue.workitem.split), and the message is acked when all of them are settled.
For each work item:
  unreadable, wrong protocol or bad address   -> dead-letter queue, with the reason
  user muted, in quiet hours or on a digest   -> held in Redis for a digest, ack
  destination's backlog past the threshold    -> held for a collapsed digest, ack
  (neither for a handler that is `immediate`: the web inbox)
  otherwise                                   -> queued per destination, sent round-robin
  already sent (idempotency key in Redis)     -> ack, nothing sent (checked before sending;
                                                 held items are checked when their digest goes)
A send that succeeded is marked sent and then acked. A transient failure goes to the retry queue
for its attempt (a TTL queue that dead-letters back), carrying the attempt number; past the last
retry, and on a permanent failure, the item goes to the dead-letter queue. Held items are
flushed as one digest per destination when due. Every outcome is written to the delivery log.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from fmn.db.models import DeliveryStatus
from fmn.senders.digest import Digest
from fmn.senders.errors import PermanentError, TransientError
from fmn.senders.handler import Handler
from fmn.senders.state import (
    DeliveryLog,
    HeldItem,
    Memory,
    PreferenceReader,
    SenderState,
    hold_for,
    still_waiting,
)
from fmn.sendqueue.deadletters import dead_letter
from fmn.sendqueue.retries import retry_later
from fmn.sendqueue.topology import declare_send_topology, send_queue
from fmn.sendqueue.workitem import WorkItem, attempt_of, split
from fmn.transport.base import Broker, Delivery

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoopConfig:
    exchange: str
    retry_delays: Sequence[float]
    prefetch: int = 200
    digest_threshold: int = 20
    backlog_digest_delay: float = 60.0
    daily_digest_hour: int = 8
    poll_interval: float = 5.0


@dataclass
class _Pending:
    delivery: Delivery
    item: WorkItem
    attempt: int  # attempts made before this one
    # Started at intake so the answer is there when a worker picks the item up.
    already_sent: asyncio.Future[set[str]] | None = None


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SenderLoop:
    def __init__(
        self,
        handler: Handler,
        broker: Broker,
        state: SenderState,
        delivery_log: DeliveryLog,
        preferences: PreferenceReader,
        config: LoopConfig,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self.handler = handler
        self.protocol = handler.protocol
        self.broker = broker
        self.state = state
        self.log = delivery_log
        self.preferences = preferences
        self.config = config
        self.clock = clock
        # Per destination, the items waiting to be sent; `_ready` rotates through destinations
        # so that one flooded destination does not delay the others.
        self._queues: dict[str, deque[_Pending]] = {}
        self._ready: deque[str] = deque()
        self._in_flight: defaultdict[str, int] = defaultdict(int)
        self._wake = asyncio.Event()
        # Destinations whose burst is being collapsed into a digest.
        self._collapsing: set[str] = set()
        # Keys being sent by this process: a second copy of an item that arrives while the
        # first is in flight is not sent; `_memory` has those sent and passed on lately.
        self._sending: set[str] = set()
        self._memory = Memory()
        # The items being sent, each in a task its worker awaits: a stop lets them end.
        self._finishing: set[asyncio.Task[None]] = set()

    @property
    def queue(self) -> str:
        return send_queue(self.config.exchange, self.protocol)

    async def run(self) -> None:
        await declare_send_topology(self.broker, self.config.exchange, self.config.retry_delays)
        tasks = [
            asyncio.create_task(self._worker(), name=f"{self.protocol}-send-{i}")
            for i in range(max(1, self.handler.concurrency))
        ]
        tasks.append(asyncio.create_task(self._flusher(), name=f"{self.protocol}-digests"))
        try:
            async for message in self.broker.consume(self.queue, prefetch=self.config.prefetch):
                parts = split(message)
                for number, delivery in enumerate(parts):
                    try:
                        await self.intake(delivery)
                    except Exception:
                        # Redis or the broker failing: give the item back and slow down; the
                        # message's other items go back with it, untried.
                        log.exception("could not take in a work item; returning it to the queue")
                        await _give_back(delivery)
                        for rest in parts[number + 1 :]:
                            await rest.nack(requeue=True)
                        break
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            # Let the items in hand be sent, marked and acked.
            await asyncio.gather(*self._finishing, return_exceptions=True)

    # ---- intake -------------------------------------------------------------------------

    async def intake(self, delivery: Delivery) -> None:
        attempt = attempt_of(delivery)
        if self._memory.was_passed_on(delivery):
            log.debug("passed on already: %s", delivery.message_id)
            await delivery.ack()
            return
        try:
            item = WorkItem.from_bytes(delivery.body)
        except (ValidationError, ValueError) as exc:
            reason = f"unreadable work item: {_one_line(str(exc))}"
            log.warning("%s", reason)
            await self._dead_letter_body(delivery, reason, attempt)
            return
        if item.protocol != self.protocol:
            await self._give_up(delivery, item, attempt, f"not a {self.protocol} work item")
            return
        try:
            self.handler.check_address(item.address)
        except PermanentError as exc:
            await self._give_up(delivery, item, attempt, str(exc))
            return
        if not self.handler.immediate and await self._held(delivery, item):
            return
        check = asyncio.ensure_future(self.state.sent_among([item.key]))
        self._enqueue(_Pending(delivery, item, attempt, check))

    async def _held(self, delivery: Delivery, item: WorkItem) -> bool:
        """Hold the item for a digest when the user's preferences or the destination's backlog
        say so."""
        prefs = await self.preferences.get(item.user)
        hold = hold_for(prefs, self.clock(), self.config.daily_digest_hour)
        if hold is not None:
            await self._hold(delivery, item, hold.reason, hold.until.timestamp())
            return True
        address = item.address
        backlog = len(self._queues.get(address, ())) + self._in_flight.get(address, 0)
        # Thresholds are at least 1 (settings), so an idle destination need not ask for its own.
        if address in self._collapsing or (
            backlog and backlog >= self.handler.backlog_limit(address, self.config.digest_threshold)
        ):
            self._collapsing.add(address)
            due = self.clock().timestamp() + self.config.backlog_digest_delay
            await self._hold(delivery, item, "backlog", due)
            return True
        return False

    def _enqueue(self, pending: _Pending) -> None:
        address = pending.item.address
        queue = self._queues.get(address)
        if queue is None:
            queue = self._queues[address] = deque()
            self._ready.append(address)
        queue.append(pending)
        self._wake.set()

    async def _hold(self, delivery: Delivery, item: WorkItem, reason: str, due: float) -> None:
        await self.state.hold(self.protocol, HeldItem(item, reason, self.clock().timestamp()), due)
        self.log.record(item, DeliveryStatus.HELD, detail=reason)
        await delivery.ack()

    # ---- sending ------------------------------------------------------------------------

    async def _next(self) -> _Pending:
        while not self._ready:
            self._wake.clear()
            await self._wake.wait()
        address = self._ready.popleft()
        queue = self._queues[address]
        pending = queue.popleft()
        if queue:
            self._ready.append(address)
        else:
            del self._queues[address]
        return pending

    async def _worker(self) -> None:
        while True:
            pending = await self._next()
            address = pending.item.address
            self._in_flight[address] += 1
            # The send in a task of its own, shielded: stopping cancels the worker but lets the
            # item it has in hand be sent, marked and acked (run() waits for it); a send cut
            # short could be a mail the server took, which the next sender would send again.
            sending = asyncio.create_task(self._send(pending))
            self._finishing.add(sending)
            sending.add_done_callback(self._finishing.discard)
            try:
                await asyncio.shield(sending)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Redis or broker trouble around the send: give the item back for later.
                log.exception("could not settle %s; returning it to the queue", pending.item.key)
                await _give_back(pending.delivery)
            finally:
                self._in_flight[address] -= 1
                if not self._in_flight[address]:
                    del self._in_flight[address]

    async def _send(self, pending: _Pending) -> None:
        item, delivery, attempt = pending.item, pending.delivery, pending.attempt
        key = item.key
        if key in self._sending:
            # Its twin is being sent right now: look again once that is settled.
            await asyncio.sleep(0.05)
            self._enqueue(pending)
            return
        if await self._already_sent(pending):
            log.debug("already sent: %s", key)
            await delivery.ack()
            return
        self._sending.add(key)
        try:
            await self.handler.send(item)
        except asyncio.CancelledError:
            raise
        except PermanentError as exc:
            await self._give_up(delivery, item, attempt + 1, str(exc))
        except Exception as exc:  # TransientError, or a bug: both worth another try
            if not isinstance(exc, TransientError | OSError | TimeoutError):
                log.exception("unexpected error sending %s", key)
            await self._retry(delivery, item, attempt, _one_line(str(exc)) or repr(exc))
        else:
            self._memory.sent(key)
            self.log.record(item, DeliveryStatus.SENT, attempt=attempt + 1)
            # Marked before this worker takes another item: a kill -9 then finds at most one
            # mail per worker taken by the server and not yet marked (reliability.md, open
            # finding 1).
            await self._mark_and_ack(key, delivery)
        finally:
            self._sending.discard(key)

    async def _already_sent(self, pending: _Pending) -> bool:
        """Whether the item was sent already: by this process, or by the answer Redis gave at
        intake. If Redis could not answer then (it was away), it is asked again now: an item
        that waited in its destination's queue through a short Redis outage is not given back
        to the broker once Redis is there again (docs/decisions.md, "Structure")."""
        key = pending.item.key
        if self._memory.was_sent(key):
            return True
        if pending.already_sent is not None:
            try:
                return bool(await pending.already_sent)
            except Exception:
                pending.already_sent = None  # failed at intake: ask again below
        return bool(await self.state.sent_among([key]))

    async def _mark_and_ack(self, key: str, delivery: Delivery) -> None:
        """Mark first, then ack: if we die between the two, the redelivered copy is dropped."""
        try:
            await self.state.mark_sent([key])
        except Exception:
            # It was delivered: ack all the same, the mark only matters for a redelivery.
            log.exception("could not mark %s as sent", key)
        try:
            await delivery.ack()
        except Exception:
            log.exception("could not ack %s; a redelivered copy will be dropped", key)

    async def _retry(self, delivery: Delivery, item: WorkItem, attempt: int, reason: str) -> None:
        delays = self.config.retry_delays
        if attempt >= len(delays):
            await self._give_up(
                delivery, item, attempt + 1, f"gave up after {attempt + 1} attempts: {reason}"
            )
            return
        self.log.record(item, DeliveryStatus.FAILED, attempt=attempt + 1, detail=reason)
        await retry_later(
            self.broker, self.config.exchange, self.protocol, delivery, attempt, reason
        )
        self._memory.passed_on(delivery)
        await delivery.ack()

    async def _give_up(
        self, delivery: Delivery, item: WorkItem, attempts: int, reason: str
    ) -> None:
        log.warning("dead-lettering %s: %s", item.key, reason)
        self.log.record(item, DeliveryStatus.DEAD, attempt=attempts, detail=reason)
        await dead_letter(
            self.broker, self.config.exchange, self.protocol, delivery.body, reason, attempts
        )
        self._memory.passed_on(delivery)
        await delivery.ack()

    async def _dead_letter_body(self, delivery: Delivery, reason: str, attempts: int) -> None:
        await dead_letter(
            self.broker, self.config.exchange, self.protocol, delivery.body, reason, attempts
        )
        self._memory.passed_on(delivery)
        await delivery.ack()

    # ---- digests ------------------------------------------------------------------------

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(self.config.poll_interval)
            try:
                await self.flush_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("flushing digests failed; will try again")

    async def flush_due(self) -> None:
        """Send the digests that are due."""
        for address in await self.state.due(self.protocol, self.clock().timestamp()):
            lock = f"{self.protocol}:{address}"
            if not await self.state.lock(lock, ttl=600):
                continue  # another sender instance is on it
            try:
                await self._flush(address)
            finally:
                await self.state.unlock(lock)

    async def _flush(self, address: str) -> None:
        held = await self.state.held(self.protocol, address)
        if not held:
            await self.state.release(self.protocol, address, [])
            return
        now = self.clock()
        prefs = await self.preferences.get(held[0].item.user)
        later = still_waiting(prefs, now)
        if later is not None:
            await self.state.reschedule(self.protocol, address, later.timestamp())
            return
        keys = [h.item.key for h in held]
        already = await self.state.sent_among(keys)
        fresh = sorted(
            (h for h in held if h.item.key not in already), key=lambda h: h.item.message.sent_at
        )
        if not fresh:
            await self.state.release(self.protocol, address, keys)
            return
        items = [h.item for h in fresh]
        digest = Digest(
            protocol=self.protocol,
            address=address,
            user=items[0].user,
            items=items,
            reasons=frozenset(h.reason for h in fresh),
        )
        try:
            if len(items) == 1:
                await self.handler.send(items[0])
            else:
                await self.handler.send_digest(digest)
        except asyncio.CancelledError:
            raise
        except PermanentError as exc:
            for h in fresh:
                await self._dead_letter_held(h.item, str(exc))
            await self.state.release(self.protocol, address, keys)
            self._collapsing.discard(address)
            return
        except Exception as exc:
            reason = _one_line(str(exc)) or repr(exc)
            log.warning("digest for %s failed, will retry: %s", address, reason)
            for item in items:
                self.log.record(item, DeliveryStatus.FAILED, detail=f"digest: {reason}")
            delay = self.config.retry_delays[0] if self.config.retry_delays else 60.0
            await self.state.reschedule(self.protocol, address, self.clock().timestamp() + delay)
            return
        status = DeliveryStatus.SENT if len(items) == 1 else DeliveryStatus.DIGESTED
        for item in items:
            self.log.record(item, status, detail=digest.why)
        await self.state.release(self.protocol, address, keys)
        self._collapsing.discard(address)

    async def _dead_letter_held(self, item: WorkItem, reason: str) -> None:
        self.log.record(item, DeliveryStatus.DEAD, detail=reason)
        await dead_letter(
            self.broker, self.config.exchange, self.protocol, item.to_bytes(), reason, 1
        )


async def _give_back(delivery: Delivery) -> None:
    await asyncio.sleep(1.0)
    with contextlib.suppress(Exception):
        await delivery.nack(requeue=True)


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500]

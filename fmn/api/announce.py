"""Announcing committed rule changes on the bus (fmn.rule.{create,update,delete}.v1).

Announcements go through an in-process queue to one background task, in order, so a request
never waits for the broker and a broker outage never undoes or blocks a committed change. A
failed publish is logged and retried after each of `api.announce_retry_delays`; after the last
it is dropped with an error (the consumers also rebuild their index periodically).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_chain,
    wait_fixed,
    wait_none,
)

from fmn.core.tasks import cancel_and_wait
from fmn.rule_messages import RuleMessage, rule_message
from fmn.transport.base import Broker, Outgoing

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Announcement:
    exchange: str
    outgoing: Outgoing
    description: str


def to_outgoing(message: RuleMessage, topic_prefix: str) -> Outgoing:
    topic = f"{topic_prefix.rstrip('.')}.{message.topic}" if topic_prefix else message.topic
    return Outgoing(
        routing_key=topic,
        body=message._encoded_body,
        message_id=message.id,
        headers=dict(message._headers),
    )


class Announcer:
    def __init__(
        self,
        broker: Broker,
        exchange: str,
        topic_prefix: str = "",
        retry_delays: Sequence[float] = (1, 5, 30, 120, 600),
    ) -> None:
        self.broker = broker
        self.exchange = exchange
        self.topic_prefix = topic_prefix
        self.retry_delays = list(retry_delays)
        self.failed = 0  # announcements given up on, for the status page
        self._queue: asyncio.Queue[Announcement] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._connected = False
        self._connect_lock = asyncio.Lock()

    def announce(self, action: str, rule_id: int, rule_name: str | None, username: str) -> None:
        """Queue an announcement; call only after the change is committed."""
        message = rule_message(action, rule_id, rule_name, username)
        self._queue.put_nowait(
            Announcement(
                self.exchange,
                to_outgoing(message, self.topic_prefix),
                f"{message.topic} rule {rule_id} of {username}",
            )
        )

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="fmn-api-announcer")

    async def drain(self) -> None:
        """Wait until every queued announcement was published or given up (tests, shutdown)."""
        await self._queue.join()

    async def stop(self, grace: float = 5.0) -> None:
        """Give queued announcements `grace` seconds to go out, then stop."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.drain(), grace)
        await cancel_and_wait(self._task)
        self._task = None
        while not self._queue.empty():
            lost = self._queue.get_nowait()
            log.error("shutting down: not announced: %s", lost.description)
            self._queue.task_done()

    async def _run(self) -> None:
        while True:
            announcement = await self._queue.get()
            try:
                await self._publish_with_retries(announcement)
            finally:
                self._queue.task_done()

    async def _publish_with_retries(self, announcement: Announcement) -> None:
        attempts = len(self.retry_delays) + 1

        def retrying_in(state: RetryCallState) -> None:
            assert state.outcome is not None and state.next_action is not None
            log.warning(
                "could not announce %s (%r); retrying in %ss",
                announcement.description,
                state.outcome.exception(),
                state.next_action.sleep,
            )

        retrying = AsyncRetrying(
            stop=stop_after_attempt(attempts),
            wait=wait_chain(*(wait_fixed(d) for d in self.retry_delays))
            if attempts > 1
            else wait_none(),
            retry=retry_if_exception_type(Exception),  # not CancelledError: stopping
            before_sleep=retrying_in,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await self._publish(announcement)
        except Exception as exc:
            self.failed += 1
            log.error(
                "gave up announcing %s after %d attempts: %r",
                announcement.description,
                attempts,
                exc,
            )

    async def ensure_connected(self) -> None:
        """Connect the broker once (it reconnects by itself afterwards)."""
        async with self._connect_lock:
            if not self._connected:
                await self.broker.connect()
                self._connected = True

    async def _publish(self, announcement: Announcement) -> None:
        await self.ensure_connected()
        await self.broker.publish(announcement.exchange, announcement.outgoing)

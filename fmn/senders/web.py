"""The web sender: stores each notification in its user's inbox (PostgreSQL), then tells the
API's live streams (fmn.inbox.events) and the user's browsers (Web Push, when configured).

Nothing twice: the entry's unique key is the work item's idempotency key, so a redelivery (after
a kill between the commit and the ack, say) stores nothing and pushes nothing. The news and the
push come after the commit and never undo it: a failed push loses no inbox entry.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Protocol

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fmn.core.settings import WebSettings
from fmn.core.tasks import cancel_and_wait
from fmn.directory import names
from fmn.inbox import store
from fmn.inbox.events import Event, InboxEvents
from fmn.senders.digest import Digest
from fmn.senders.errors import PermanentError, TransientError
from fmn.senders.handler import Handler
from fmn.sendqueue.workitem import WorkItem

log = logging.getLogger(__name__)


class Pusher(Protocol):
    async def push(self, user_id: int, entry_id: int, item: WorkItem) -> None: ...

    async def close(self) -> None: ...


class WebHandler(Handler):
    protocol = "web"
    # The inbox is read when the user wants: every notification goes in at once, one entry
    # each (no holding for quiet hours or digests, no collapsing of a burst).
    immediate = True

    def __init__(
        self,
        settings: WebSettings,
        sessionmaker: async_sessionmaker[AsyncSession],
        events: InboxEvents,
        pusher: Pusher | None = None,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.events = events
        self.pusher = pusher
        self.concurrency = settings.concurrency
        self._pruner: asyncio.Task[None] | None = None

    async def setup(self) -> None:
        self._pruner = asyncio.create_task(self._prune_periodically(), name="web-inbox-prune")

    async def stop(self) -> None:
        await cancel_and_wait(self._pruner)
        if self.pusher is not None:
            await self.pusher.close()

    def check_address(self, address: str) -> None:
        if not names.is_account_name(address):
            raise PermanentError(f"not a username: {address[:100]!r}")

    async def send(self, item: WorkItem) -> None:
        if item.address != item.user:
            # The API accepts only the owner's own inbox; anything else is no rule of ours.
            raise PermanentError(f"the inbox of {item.address!r} is not {item.user!r}'s")
        try:
            async with self.sessionmaker.begin() as session:
                stored = await store.store_item(session, item, dt.datetime.now(dt.UTC))
        except store.NoSuchUser as exc:
            raise PermanentError(f"no such user: {exc}") from None
        except (DBAPIError, OSError) as exc:
            raise TransientError(f"could not store the inbox entry: {exc!r}") from exc
        # A redelivered item was stored before, maybe without its news: tell the streams again
        # (a stream sends only what it has not sent). The push went, or was lost, the first time.
        try:
            await self.events.publish(Event(item.user, "entries"))
        except Exception as exc:
            log.warning("could not announce inbox entry %s (%r)", stored.entry_id, exc)
        if stored.new and self.pusher is not None:
            try:
                await self.pusher.push(stored.user_id, stored.entry_id, item)
            except Exception:
                log.exception("Web Push for inbox entry %s failed", stored.entry_id)

    async def send_digest(self, digest: Digest) -> None:
        # The inbox lists each notification: a digest of held items is stored one by one.
        for item in digest.items:
            await self.send(item)

    async def _prune_periodically(self) -> None:
        while True:
            try:
                pruned, batches = await store.prune(
                    self.sessionmaker, self.settings.retention_days, self.settings.prune_batch
                )
                if pruned:
                    log.info("pruned %d inbox entries in %d batches", pruned, batches)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("pruning the inbox failed; will try again")
            await asyncio.sleep(self.settings.prune_interval)

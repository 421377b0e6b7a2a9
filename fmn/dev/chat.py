"""IRC and Matrix deliveries of the embedded run: stand-in handlers that log each message and keep
it in the outbox instead of talking to a network, behind the real shared sender loop (so dedup,
retries, digests and the delivery log behave as in production)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import ClassVar

from fmn.core.settings import Settings
from fmn.db.session import make_engine, make_sessionmaker
from fmn.dev.outbox import Outbox
from fmn.notify.lines import line
from fmn.notify.sanitize import one_line
from fmn.senders.deliverylog import DeliveryLog
from fmn.senders.digest import Digest
from fmn.senders.errors import PermanentError
from fmn.senders.handler import Handler
from fmn.senders.loop import SenderLoop
from fmn.senders.policy import PreferenceReader
from fmn.senders.service import loop_config
from fmn.senders.state import make_state
from fmn.transport import make_broker
from fmn.workitem import Protocol, WorkItem

log = logging.getLogger(__name__)

_ADDRESS = {
    "irc": re.compile(r"^[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]{0,31}$"),
    "matrix": re.compile(r"^@[a-z0-9._=/+-]+:[A-Za-z0-9.-]+(:\d+)?$"),
}


class LoggedChat(Handler):
    protocol: ClassVar[Protocol]

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def check_address(self, address: str) -> None:
        if not _ADDRESS[self.protocol].match(address):
            raise PermanentError(f"not a valid {self.protocol} address: {address[:100]!r}")

    def _keep(self, address: str, text: str, html: str | None) -> None:
        log.info("%s to %s: %s", self.protocol, address, one_line(text, 300))
        self.outbox.add_chat(self.protocol, address, text, html)

    async def send(self, item: WorkItem) -> None:
        if item.chat is not None:
            self._keep(item.address, item.chat.text, item.chat.html)
        else:
            self._keep(item.address, line(item.message), None)

    async def send_digest(self, digest: Digest) -> None:
        lines = [f"{digest.title} ({digest.why}):", *(line(i.message) for i in digest.items)]
        self._keep(digest.address, "\n".join(lines), None)


class LoggedIRC(LoggedChat):
    protocol = "irc"


class LoggedMatrix(LoggedChat):
    protocol = "matrix"


async def run_logged_sender(handler: LoggedChat, settings: Settings, stop: asyncio.Event) -> None:
    """The shared sender loop around a stand-in handler, until `stop` is set."""
    senders = settings.senders
    state = make_state(senders.state_url or settings.cache.url, senders.sent_key_ttl)
    engine = make_engine(settings.database)
    delivery_log = DeliveryLog(make_sessionmaker(engine), senders.log_flush_interval)
    preferences = PreferenceReader(make_sessionmaker(engine), senders.user_settings_ttl)
    broker = make_broker(settings.send_queue.amqp_url, f"fmn run ({handler.protocol})")
    await broker.connect()
    delivery_log.start()
    loop = SenderLoop(handler, broker, state, delivery_log, preferences, loop_config(settings))
    task = asyncio.create_task(loop.run(), name=f"dev-sender-{handler.protocol}")
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.error("the %s sender failed", handler.protocol, exc_info=task.exception())
    finally:
        for t in (task, stopped):
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t
        if not settings.send_queue.amqp_url.startswith("memory://"):
            await broker.close()  # an in-process broker is shared with the rest of the run
        await delivery_log.close()
        await state.close()
        await engine.dispose()

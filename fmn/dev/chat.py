"""IRC and Matrix deliveries of the embedded run: stand-in handlers that log each message and keep
it in the outbox instead of talking to a network. The runner passes them to the senders' own
start-up (fmn.senders.service.run_sender), so dedup, retries, digests and the delivery log behave
as in production."""

from __future__ import annotations

import logging
import re
from typing import ClassVar

from fmn.dev.outbox import Outbox
from fmn.notify import line, one_line
from fmn.senders.digest import Digest
from fmn.senders.errors import PermanentError
from fmn.senders.handler import Handler
from fmn.sendqueue.workitem import Protocol, WorkItem

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

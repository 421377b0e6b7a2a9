"""The IRC sender: one PRIVMSG per notification over one persistent connection, within the
server's flood limit (a token bucket per connection, which is what IRC servers count)."""

from __future__ import annotations

import re
import ssl

from fmn.core.settings import IRCSenderSettings
from fmn.notify import line, one_line
from fmn.senders.digest import Digest
from fmn.senders.errors import PermanentError
from fmn.senders.handler import Handler
from fmn.senders.irc_client import ConnectionLost, IRCConfig, IRCConnection
from fmn.senders.ratelimit import TokenBucket
from fmn.sendqueue.workitem import WorkItem

# RFC 2812 nicknames, at the length modern networks allow.
_NICK = re.compile(r"[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]{0,29}")


def split_utf8(text: str, budget: int) -> list[str]:
    """Cut text into pieces of at most `budget` UTF-8 bytes, never inside a character, at a
    space when one is in the second half of the piece."""
    data = text.encode("utf-8")
    pieces: list[str] = []
    while len(data) > budget:
        cut = budget
        while cut > 0 and (data[cut] & 0xC0) == 0x80:  # a UTF-8 continuation byte
            cut -= 1
        space = data.rfind(b" ", budget // 2, cut + 1)
        if space > 0:
            cut = space
        pieces.append(data[:cut].decode("utf-8").rstrip())
        data = data[cut:].lstrip(b" ")
    if data or not pieces:
        pieces.append(data.decode("utf-8"))
    return pieces


class IRCHandler(Handler):
    protocol = "irc"

    def __init__(self, settings: IRCSenderSettings, ssl_context: ssl.SSLContext | None = None):
        self.settings = settings
        self.connection = IRCConnection(
            IRCConfig(
                host=settings.host,
                port=settings.port,
                tls=settings.tls,
                nickname=settings.nickname,
                sasl_username=settings.sasl_username,
                sasl_password=settings.sasl_password,
                reconnect_min=settings.reconnect_min,
                reconnect_max=settings.reconnect_max,
                ssl_context=ssl_context,
            )
        )
        self.flood = TokenBucket(1 / settings.line_interval, settings.burst)

    async def setup(self) -> None:
        # Not waiting for the connection: items wait (unacked) until it is up.
        self.connection.start()

    async def stop(self) -> None:
        await self.connection.stop()

    def check_address(self, address: str) -> None:
        if not _NICK.fullmatch(address):
            raise PermanentError(f"not a valid IRC nickname: {address[:100]!r}")

    async def send(self, item: WorkItem) -> None:
        # An IRC line ends at a line break: the guard at the frame's edge.
        text = item.chat.text if item.chat else line(item.message)
        await self._say(item.address, one_line(text))

    async def send_digest(self, digest: Digest) -> None:
        head = f"{digest.title} ({digest.by_application()}; {digest.why}): "
        await self._say(digest.address, one_line(head), [line(i.message) for i in digest.items])

    async def _say(self, target: str, text: str, listing: list[str] | None = None) -> None:
        """Send until the server confirmed, across reconnections (the item stays unacked)."""
        while True:
            await self.connection.wait_ready()
            budget = self.connection.line_budget(target)
            lines = split_utf8(text, budget) if listing is None else [_fit(text, listing, budget)]
            try:
                refusal = await self.connection.privmsg(
                    target, lines, self.flood, self.settings.confirm_timeout
                )
            except ConnectionLost:
                continue
            if refusal is not None:
                raise PermanentError(f"IRC server refused {target}: {refusal}")
            return


def _fit(head: str, entries: list[str], budget: int) -> str:
    """One line: the head, then as many entries as fit, then how many were left out."""
    line = head
    for n, entry in enumerate(entries):
        more = f" (+{len(entries) - n} more)"
        candidate = (line if n == 0 else line + " | ") + one_line(entry)
        rest = len(entries) - n - 1
        tail = f" (+{rest} more)" if rest else ""
        if len((candidate + tail).encode()) > budget:
            return split_utf8(line + more, budget)[0]
        line = candidate
    return split_utf8(line, budget)[0]

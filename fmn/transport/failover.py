"""A robust AMQP connection over the nodes of a RabbitMQ cluster: each connection attempt goes to
the next URL of the list, so that a lost node's clients reconnect to another one.

aio-pika's RobustConnection reconnects to its one URL forever. Its reconnection loop clears the
connection's transport before each attempt (`self.transport = None`, then `Connection.connect`,
which reads `self.url`): that is where the next URL is put in. aio-pika is pinned in
requirements/, and tests/transport/test_cluster_settings.py fails if this hook stops being called.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from aio_pika import RobustConnection
from aio_pika.abc import UnderlayConnection
from yarl import URL

log = logging.getLogger(__name__)


def printable(url: str | URL) -> str:
    """The URL without its password and query (which names the key files)."""
    parts = urlsplit(str(url))
    netloc = parts.netloc
    if parts.password:
        netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc, query=""))


class FailoverConnection(RobustConnection):
    """Connects to `urls[0]` first; every later attempt (a reconnection, or a failed attempt
    again) goes to the URL after the previous attempt's. The options of the first URL's query
    (heartbeat, connection name...) apply to every node; TLS files are read from each URL."""

    def __init__(self, urls: Sequence[str], name: str = "fmn", **kwargs: Any) -> None:
        self._urls = [URL(u) for u in urls]
        self._name = name
        self._attempts = 0  # transport resets seen: the first is __init__'s own
        self._current = self._urls[0]
        self._connected_to: URL | None = None
        super().__init__(self._urls[0], **kwargs)

    @property  # type: ignore[override]
    def url(self) -> URL:
        return self._current

    @url.setter
    def url(self, value: URL) -> None:
        self._current = URL(value)

    @property  # type: ignore[override]
    def transport(self) -> UnderlayConnection | None:
        return self._transport

    @transport.setter
    def transport(self, value: UnderlayConnection | None) -> None:
        self._transport = value
        if value is None:
            self._before_attempt()
        elif self._current != self._connected_to:
            if self._connected_to is not None:
                log.warning("%s: failed over to %s", self._name, printable(self._current))
            elif len(self._urls) > 1:
                log.info("%s: connected to %s", self._name, printable(self._current))
            self._connected_to = self._current

    def _before_attempt(self) -> None:
        self._attempts += 1
        # __init__'s reset and the first attempt use urls[0]; each later one the next URL.
        index = max(0, self._attempts - 2) % len(self._urls)
        previous, self._current = self._current, self._urls[index]
        if self._current != previous and not getattr(self, "_close_called", False):
            log.warning(
                "%s: %s did not answer or went away; trying %s",
                self._name,
                printable(previous),
                printable(self._current),
            )

"""A small asyncio IRC client for the IRC sender: one TLS connection, SASL PLAIN, reconnection
with backoff, and a PING after each notification whose PONG confirms the server has processed
the PRIVMSG (and tells whether it refused the recipient, e.g. 401 no such nick).

Why not a library: jaraco's `irc` (FMN 3's choice) does SASL only in its blocking client, not
in its asyncio one, and writes without flow control; `irc3` is a plugin framework whose queued,
rate-limited writes cannot tell a caller when its line went out nor tie a 401 to it. The
sender needs exactly those two things to ack only after a successful send.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import logging
import ssl
from dataclasses import dataclass

from fmn.core.tasks import cancel_and_wait
from fmn.senders.ratelimit import TokenBucket

log = logging.getLogger(__name__)

# Replies that mean the server will not deliver to that target.
REFUSALS = {"401", "404", "406", "477", "486", "492", "531", "716"}
# Replies refusing a JOIN: no such channel, too many channels, full, invite only, banned, key.
JOIN_REFUSALS = {"403", "405", "471", "473", "474", "475", "476", "477", "489"}
MAX_LINE = 512  # bytes, including the CRLF (RFC 1459 §2.3)


class ConnectionLost(ConnectionError):
    """The connection dropped while a line was on its way: send it again once reconnected."""


class LoginFailed(Exception):
    """The server refused our SASL login or nickname; retrying with backoff."""


@dataclass(frozen=True)
class IRCConfig:
    host: str
    port: int
    tls: bool
    nickname: str
    sasl_username: str | None
    sasl_password: str | None
    reconnect_min: float = 1.0
    reconnect_max: float = 120.0
    ssl_context: ssl.SSLContext | None = None
    connect_timeout: float = 30.0


class IRCConnection:
    def __init__(self, config: IRCConfig) -> None:
        self.config = config
        self.nick = config.nickname
        self._writer: asyncio.StreamWriter | None = None
        self._ready = asyncio.Event()
        self._lost = asyncio.Event()
        self._tokens = itertools.count(1)
        self._pongs: dict[str, asyncio.Future[None]] = {}
        self._refused: dict[str, str] = {}  # lower-cased target -> the server's reply
        # Channels joined on this connection (lower-cased), and the JOINs waiting for an answer.
        self._joined: set[str] = set()
        self._joins: dict[str, asyncio.Future[str | None]] = {}
        self._task: asyncio.Task[None] | None = None
        self.connects = 0  # successful registrations, for tests and logs

    # ---- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="irc-connection")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        self._close()

    async def wait_ready(self) -> None:
        await self._ready.wait()

    async def _run(self) -> None:
        delay = self.config.reconnect_min
        while True:
            try:
                reader = await self._connect()
                delay = self.config.reconnect_min
                await self._read(reader)
                log.warning("IRC server closed the connection")
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, LoginFailed, ConnectionError) as exc:
                log.warning("IRC connection failed: %s", exc)
            self._close()
            log.info("reconnecting to IRC in %.1f s", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.config.reconnect_max)

    def _close(self) -> None:
        self._ready.clear()
        self._lost.set()
        for future in self._pongs.values():
            if not future.done():
                future.set_exception(ConnectionLost("IRC connection lost"))
        self._pongs.clear()
        for join in self._joins.values():
            if not join.done():
                join.set_exception(ConnectionLost("IRC connection lost"))
        self._joins.clear()
        self._joined.clear()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    # ---- connecting and logging in --------------------------------------------------------

    async def _connect(self) -> asyncio.StreamReader:
        cfg = self.config
        context = (cfg.ssl_context or ssl.create_default_context()) if cfg.tls else None
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(cfg.host, cfg.port, ssl=context), cfg.connect_timeout
        )
        self._writer = writer
        self._lost.clear()
        self.nick = cfg.nickname
        sasl = cfg.sasl_username is not None and cfg.sasl_password is not None
        if sasl:
            self._write("CAP LS 302")
        self._write(f"NICK {self.nick}", f"USER {cfg.nickname} 0 * :Fedora Notifications")
        await asyncio.wait_for(self._register(reader, sasl), cfg.connect_timeout)
        self.connects += 1
        self._ready.set()
        log.info("connected to IRC %s:%d as %s", cfg.host, cfg.port, self.nick)
        return reader

    async def _register(self, reader: asyncio.StreamReader, sasl: bool) -> None:
        cfg = self.config
        while True:
            line = await reader.readline()
            if not line:
                raise ConnectionError("closed during registration")
            _, command, params = parse(line)
            if command == "PING":
                self._write(f"PONG :{params[-1] if params else ''}")
            elif command == "CAP" and len(params) >= 3 and params[1] == "LS":
                if params[2] == "*":
                    continue  # more capabilities follow
                if "sasl" not in _cap_names(params[-1]):
                    raise LoginFailed("the server does not offer SASL")
                self._write("CAP REQ :sasl")
            elif command == "CAP" and len(params) >= 3 and params[1] == "ACK":
                self._write("AUTHENTICATE PLAIN")
            elif command == "CAP" and len(params) >= 3 and params[1] == "NAK":
                raise LoginFailed("the server refused the SASL capability")
            elif command == "AUTHENTICATE" and params == ["+"]:
                secret = f"{cfg.sasl_username}\0{cfg.sasl_username}\0{cfg.sasl_password}"
                self._write("AUTHENTICATE " + base64.b64encode(secret.encode()).decode())
            elif command == "903":  # SASL success
                self._write("CAP END")
            elif command in ("902", "904", "905", "906", "908"):
                raise LoginFailed(f"SASL login refused: {command} {' '.join(params[1:])}")
            elif command in ("432", "433", "436"):  # nickname invalid or taken
                if command == "432":
                    raise LoginFailed(f"nickname {self.nick!r} refused")
                self.nick = (self.nick + "_")[:30]
                self._write(f"NICK {self.nick}")
            elif command == "001":
                if params:
                    self.nick = params[0]
                return
            elif command == "ERROR":
                raise ConnectionError(f"server error: {' '.join(params)}")

    # ---- reading --------------------------------------------------------------------------

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while line := await reader.readline():
            prefix, command, params = parse(line)
            if command == "PING":
                self._write(f"PONG :{params[-1] if params else ''}")
            elif command == "PONG" and params:
                future = self._pongs.pop(params[-1], None)
                if future is not None and not future.done():
                    future.set_result(None)
            elif command == "JOIN" and params and _nick(prefix) == self.nick.lower():
                self._joined.add(params[0].lower())
                self._settle_join(params[0], None)
            elif command in ("PART", "KICK") and params:
                gone = _nick(prefix) if command == "PART" else (params[1:2] or [""])[0].lower()
                if gone == self.nick.lower():
                    self._joined.discard(params[0].lower())
            elif command in JOIN_REFUSALS and len(params) >= 2 and params[1].lower() in self._joins:
                self._settle_join(params[1], f"{command} {' '.join(params[1:])}")
            elif command in REFUSALS and len(params) >= 2:
                self._refused[params[1].lower()] = f"{command} {' '.join(params[1:])}"
            elif command == "NICK" and params and _nick(prefix) == self.nick.lower():
                self.nick = params[0]
            elif command == "ERROR":
                return

    # ---- sending --------------------------------------------------------------------------

    def _write(self, *lines: str) -> None:
        if self._writer is None:
            raise ConnectionLost("not connected")
        for line in lines:
            self._writer.write(line.encode("utf-8") + b"\r\n")

    async def privmsg(
        self,
        target: str,
        lines: list[str],
        limiter: TokenBucket,
        confirm_timeout: float,
    ) -> str | None:
        """Send the lines to `target` and wait until the server has processed them. Returns the
        server's refusal (for example "401 nick :No such nick"), or None when accepted."""
        if not self._ready.is_set():
            raise ConnectionLost("not connected")
        lost = self._lost
        self._refused.pop(target.lower(), None)
        for line in lines:
            await limiter.acquire()
            if lost.is_set() or self._writer is None:
                raise ConnectionLost("IRC connection lost")
            self._write(f"PRIVMSG {target} :{line}")
            await self._writer.drain()
        token = f"fmn-{next(self._tokens)}"
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pongs[token] = future
        self._write(f"PING :{token}")
        try:
            await asyncio.wait_for(future, confirm_timeout)
        except TimeoutError:
            self._pongs.pop(token, None)
            # No answer: the connection is probably dead; make sure we reconnect.
            if self._writer is not None:
                self._writer.close()
            raise ConnectionLost("no PONG from the IRC server") from None
        return self._refused.pop(target.lower(), None)

    def _settle_join(self, channel: str, refusal: str | None) -> None:
        future = self._joins.pop(channel.lower(), None)
        if future is not None and not future.done():
            future.set_result(refusal)

    async def join(self, channel: str, limiter: TokenBucket, answer_within: float) -> str | None:
        """Join a channel once per connection (a channel's default +n mode refuses messages
        from outside). Returns the server's refusal, or None when in the channel."""
        key = channel.lower()
        if key in self._joined:
            return None
        future = self._joins.get(key)
        if future is None:
            if not self._ready.is_set():
                raise ConnectionLost("not connected")
            future = asyncio.get_running_loop().create_future()
            self._joins[key] = future
            await limiter.acquire()
            self._write(f"JOIN {channel}")
        try:
            return await asyncio.wait_for(asyncio.shield(future), answer_within)
        except TimeoutError:
            self._joins.pop(key, None)
            return f"no answer to JOIN {channel}"

    def line_budget(self, target: str) -> int:
        """Bytes left for text in one PRIVMSG as the recipient receives it: the server adds
        ":nick!user@host " in front, with user up to 10 and host up to 63 bytes."""
        prefix = 1 + len(self.nick.encode()) + 1 + 10 + 1 + 63 + 1
        return MAX_LINE - 2 - prefix - len(f"PRIVMSG {target} :".encode())


def parse(raw: bytes) -> tuple[str, str, list[str]]:
    """(prefix, command, params) of one IRC line; message tags are skipped."""
    line = raw.decode("utf-8", "replace").rstrip("\r\n")
    if line.startswith("@"):
        line = line.partition(" ")[2]
    prefix = ""
    if line.startswith(":"):
        prefix, _, line = line[1:].partition(" ")
    head, sep, trailing = line.partition(" :")
    params = head.split()
    command = params.pop(0).upper() if params else ""
    if sep:
        params.append(trailing)
    return prefix, command, params


def _cap_names(caps: str) -> set[str]:
    return {c.split("=", 1)[0] for c in caps.split()}


def _nick(prefix: str) -> str:
    return prefix.split("!", 1)[0].lower()

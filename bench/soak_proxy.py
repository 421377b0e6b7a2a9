"""A TCP proxy that can be cut and restored.

fmn's processes reach RabbitMQ, PostgreSQL and Redis through it in the soak, so an outage of one
of them can be injected without restarting a service other people's tests share. A cut resets
every open connection on both sides (the server sees its client vanish, as in a crash or a
partition: RabbitMQ requeues what was unacked) and resets new ones until the proxy is restored.

`ProxyProcess` runs the proxies in a child process, so that relaying fmn's traffic does not
compete for the harness's event loop and interpreter lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

Address = tuple[str, int]
_CHUNK = 256 * 1024


@dataclass
class Proxy:
    target: Address
    port: int = 0
    cut: bool = False
    connections: int = 0  # accepted since start, for tests
    _server: asyncio.Server | None = None
    _open: set[asyncio.StreamWriter] = field(default_factory=set)
    # Cleared while stalled: connections stay open and nothing passes (a server that stopped
    # answering, as a starved or blocked broker does).
    _flowing: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._flowing.set()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = await asyncio.start_server(self._handle, host, port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        self.reset_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def set_cut(self, cut: bool) -> None:
        self.cut = cut
        if cut:
            self.reset_all()

    def set_stalled(self, stalled: bool) -> None:
        if stalled:
            self._flowing.clear()
        else:
            self._flowing.set()

    def reset_all(self) -> None:
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.cut:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()  # the service itself is down: the client sees a reset
            return
        pair = {writer, up_writer}
        self._open |= pair
        try:
            await asyncio.gather(
                _pipe(reader, up_writer, self._flowing), _pipe(up_reader, writer, self._flowing)
            )
        finally:
            self._open -= pair
            for w in pair:
                w.transport.abort()


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, flowing: asyncio.Event
) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(_CHUNK):
            await flowing.wait()
            writer.write(data)
            await writer.drain()
    # One side ended: end the other too, so neither waits on a half-open connection.
    writer.transport.abort()


# ---- in a child process ------------------------------------------------------------------------


def _serve(conn: Connection, targets: dict[str, Address]) -> None:
    asyncio.run(_serve_async(conn, targets))


async def _serve_async(conn: Connection, targets: dict[str, Address]) -> None:
    proxies = {name: Proxy(target) for name, target in targets.items()}
    for proxy in proxies.values():
        await proxy.start()
    conn.send({name: p.port for name, p in proxies.items()})
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_command() -> None:
        try:
            command: tuple[Any, ...] = conn.recv()
        except EOFError:  # the parent is gone
            stopped.set()
            return
        if command[0] == "stop":
            stopped.set()
        else:
            proxies[command[1]].set_cut(command[0] == "cut")
        conn.send("ok")

    loop.add_reader(conn.fileno(), on_command)
    await stopped.wait()
    loop.remove_reader(conn.fileno())
    for proxy in proxies.values():
        await proxy.close()


class ProxyProcess:
    """Proxies to several targets, by name, in a child process: `ports[name]` to connect to."""

    def __init__(self, targets: dict[str, Address]) -> None:
        self.targets = targets
        self.ports: dict[str, int] = {}
        self._conn: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, self.targets), name="soak-proxy", daemon=True
        )
        self._process.start()
        self._conn = parent
        if not parent.poll(60):
            raise RuntimeError("the proxy process did not start")
        self.ports = parent.recv()

    def _command(self, *command: str) -> None:
        if self._conn is None:
            raise RuntimeError("proxy process not started")
        self._conn.send(command)
        if not self._conn.poll(30):
            raise RuntimeError(f"the proxy process did not answer {command}")
        self._conn.recv()

    def cut(self, name: str) -> None:
        self._command("cut", name)

    def restore(self, name: str) -> None:
        self._command("restore", name)

    def stop(self) -> None:
        if self._process is None:
            return
        with contextlib.suppress(OSError, RuntimeError):
            self._command("stop")
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)
        self._process = None

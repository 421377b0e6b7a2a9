"""Reading Server-Sent Events: from an app in the test's process (the first answer only, then
the client goes), and from a served API over HTTP (events as they come)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx


async def first_answer(app: Any, path: str, headers: dict[str, str]) -> httpx.Response:
    """The status and headers the app answers a GET with, and its body up to the first event
    (or the whole error body); then the client disconnects. httpx's ASGI transport would wait
    for the end of a stream, which never comes."""
    started: dict[str, Any] = {}
    body = bytearray()
    got_something = asyncio.Event()
    request_sent = False

    async def receive() -> dict[str, Any]:
        nonlocal request_sent
        if not request_sent:
            request_sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await got_something.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            started.update(message)
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))
            if body or not message.get("more_body", False):
                got_something.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        + [(b"host", b"test")],
        "client": ("127.0.0.1", 1234),
        "server": ("test", 80),
    }
    await asyncio.wait_for(app(scope, receive, send), 30)
    return httpx.Response(
        started["status"],
        headers=[(k.decode(), v.decode()) for k, v in started.get("headers", [])],
        content=bytes(body),
    )


@dataclass
class SSE:
    event: str = "message"
    id: str | None = None
    data: str = ""
    comment: str | None = None

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class EventReader:
    """Events of an open stream, read in the background into a queue."""

    response: httpx.Response
    events: asyncio.Queue[SSE] = field(default_factory=asyncio.Queue)

    async def run(self) -> None:
        current = SSE()
        data: list[str] = []
        async for line in self.response.aiter_lines():
            if line == "":
                if data or current.comment is not None or current.id is not None:
                    current.data = "\n".join(data)
                    await self.events.put(current)
                current, data = SSE(), []
            elif line.startswith(":"):
                await self.events.put(SSE(event="comment", comment=line[1:].strip()))
            else:
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "event":
                    current.event = value
                elif name == "id":
                    current.id = value
                elif name == "data":
                    data.append(value)

    async def next(self, event: str, timeout: float = 30.0) -> SSE:
        """The next event of this type (others before it are dropped)."""
        async with asyncio.timeout(timeout):
            while True:
                found = await self.events.get()
                if found.event == event:
                    return found


@dataclass
class Stream:
    reader: EventReader
    task: asyncio.Task[None]
    response: httpx.Response


async def open_stream(
    http: httpx.AsyncClient, url: str, headers: dict[str, str]
) -> AsyncIterator[Stream]:
    """An open stream (an async generator: use with contextlib.asynccontextmanager)."""
    async with http.stream("GET", url, headers=headers, timeout=None) as response:
        reader = EventReader(response)
        task = asyncio.create_task(reader.run())
        try:
            yield Stream(reader, task, response)
        finally:
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass

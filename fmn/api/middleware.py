"""A helper for the API's pure ASGI middlewares (cheaper than BaseHTTPMiddleware: no task and
no stream per request)."""

from __future__ import annotations

from starlette.types import Message, Send


class WatchedSend:
    """Wraps `send`: remembers whether the response started and with which status (500 if it
    never did), and appends `headers` to the response's start."""

    __slots__ = ("_headers", "_send", "started", "status")

    def __init__(self, send: Send, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        self._send = send
        self._headers = headers
        self.started = False
        self.status = 500

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.status = message["status"]
            if self._headers:
                message["headers"] = [*message.get("headers", ()), *self._headers]
        await self._send(message)

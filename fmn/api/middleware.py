"""A helper for the API's pure ASGI middlewares (cheaper than BaseHTTPMiddleware: no task and
no stream per request)."""

from __future__ import annotations

from starlette.types import Message, Send


class WatchedSend:
    """Wraps `send` and remembers whether the response started, and with which status."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False
        self.status = 500

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.status = message["status"]
        await self._send(message)

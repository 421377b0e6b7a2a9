"""Request limits: body size (ASGI middleware) and per-user rate limits (shared cache)."""

from __future__ import annotations

import json
import logging
import time

from cashews import Cache
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fmn.api.middleware import HTTPMiddleware, WatchedSend

log = logging.getLogger(__name__)


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many requests, try again in {retry_after} seconds")
        self.retry_after = retry_after


class RateLimiter:
    """A fixed one-minute window per user and scope, counted in the shared cache so every API
    process enforces one limit. If the cache is down, requests are let through."""

    def __init__(self, cache: Cache, per_minute: int) -> None:
        self.cache = cache
        self.per_minute = per_minute

    async def hit(self, user: str, scope: str = "directory") -> None:
        now = time.time()
        window = int(now // 60)
        key = f"fmn:api:rate:{scope}:{user}:{window}"
        try:
            count = await self.cache.incr(key, expire=61)
        except Exception as exc:  # the limit is a protection, not a dependency
            log.warning("rate limit not checked, the cache failed: %r", exc)
            return
        if count is not None and count > self.per_minute:
            raise RateLimited(retry_after=max(1, int((window + 1) * 60 - now) + 1))


class BodySizeLimit(HTTPMiddleware):
    """Refuse request bodies larger than `max_size` bytes with 413, whether announced by
    Content-Length or streamed in chunks."""

    def __init__(self, app: ASGIApp, max_size: int) -> None:
        super().__init__(app)
        self.max_size = max_size

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_size
                except ValueError:
                    too_big = False
                if too_big:
                    await self._refuse(send)
                    return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_size:
                    raise _TooLarge(413, self._detail())
            return message

        watched = WatchedSend(send)
        try:
            await self.app(scope, limited_receive, watched)
        except _TooLarge:
            if not watched.started:
                await self._refuse(send)

    def _detail(self) -> str:
        return f"The request body is larger than {self.max_size} bytes"

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": self._detail()}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(HTTPException):
    """Raised while the body streams in; FastAPI turns it into the 413 answer itself."""

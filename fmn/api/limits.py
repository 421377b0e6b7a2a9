"""Request limits: body size (ASGI middleware) and per-user rate limits (shared cache)."""

from __future__ import annotations

import json
import logging
import time

from cachetools import TTLCache
from cashews import Cache
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fmn.api.middleware import HTTPMiddleware, WatchedSend

log = logging.getLogger(__name__)

# Seconds of one rate-limit window; keys counted in memory at most when the cache is down.
WINDOW = 60
LOCAL_KEYS = 100_000


class RateLimited(Exception):
    def __init__(self, retry_after: int, reason: str = "Too many requests") -> None:
        super().__init__(f"{reason}, try again in {retry_after} seconds")
        self.retry_after = retry_after


class RateLimiter:
    """A fixed one-minute window per key and scope, counted in the shared cache so every API
    process enforces one limit. When the cache cannot count (down, unreachable), each process
    counts in its own memory: a client spread over N processes then gets at most N times the
    limit, never an unlimited number of requests."""

    def __init__(self, cache: Cache, per_minute: int) -> None:
        self.cache = cache
        self.per_minute = per_minute
        self._local: TTLCache[str, int] = TTLCache(maxsize=LOCAL_KEYS, ttl=WINDOW + 1)
        self._degraded = False

    async def hit(self, who: str, scope: str = "directory", per_minute: int | None = None) -> None:
        """Count one request of `who` (a user, an address) in `scope`; RateLimited beyond
        `per_minute` (the limiter's own by default) in the current window."""
        now = time.time()
        window = int(now // WINDOW)
        key = f"fmn:api:rate:{scope}:{who}:{window}"
        try:
            # cashews answers None instead of raising when Redis is unreachable.
            count = await self.cache.incr(key, expire=WINDOW + 1)
        except Exception as exc:
            log.debug("rate limit cache failed: %r", exc)
            count = None
        if count is None:
            count = self._count_locally(key)
        elif self._degraded:
            self._degraded = False
            log.warning("rate limits are counted in the shared cache again")
        if count > (per_minute or self.per_minute):
            raise RateLimited(retry_after=max(1, int((window + 1) * WINDOW - now) + 1))

    def _count_locally(self, key: str) -> int:
        if not self._degraded:
            self._degraded = True
            log.warning("the cache cannot count requests: rate limits are per process until it can")
        count = self._local.get(key, 0) + 1
        self._local[key] = count
        return count


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

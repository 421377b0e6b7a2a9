"""Request limits: body size (ASGI middleware) and per-user rate limits (shared cache)."""

from __future__ import annotations

import json
import logging
import time

from cachetools import TTLCache
from cashews import Cache
from starlette.exceptions import HTTPException
from starlette.types import Scope, Send

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


def announced_too_large(scope: Scope, max_size: int) -> bool:
    """Whether the request's Content-Length announces more than `max_size` bytes."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value) > max_size
            except ValueError:
                return False
    return False


def body_limit_detail(max_size: int) -> str:
    return f"The request body is larger than {max_size} bytes"


async def refuse_body(send: Send, max_size: int) -> None:
    """The 413 answer to a body larger than `max_size` bytes."""
    body = json.dumps({"detail": body_limit_detail(max_size)}).encode()
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


class BodyTooLarge(HTTPException):
    """Raised while the body streams in; FastAPI turns it into the 413 answer itself."""

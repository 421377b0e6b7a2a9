"""A token bucket: `burst` sends at once, then one every 1/rate seconds. IRC servers and Matrix
homeservers both punish floods this way, and a homeserver's 429 pauses the bucket."""

from __future__ import annotations

import asyncio
import time


class TokenBucket:
    def __init__(self, rate: float, burst: int) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = max(1, burst)
        self._tokens = float(self.burst)
        self._stamp = time.monotonic()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    def _refill(self, now: float) -> None:
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    async def acquire(self, cost: float = 1.0) -> None:
        """Wait until `cost` tokens are available and take them (in arrival order)."""
        async with self._lock:
            while True:
                now = time.monotonic()
                if now < self._paused_until:
                    await asyncio.sleep(self._paused_until - now)
                    continue
                self._refill(now)
                if self._tokens >= cost:
                    self._tokens -= cost
                    return
                await asyncio.sleep((cost - self._tokens) / self.rate)

    def pause(self, seconds: float) -> None:
        """The server asked us to wait (Matrix 429 retry_after_ms): nothing goes out before."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)
        self._tokens = 0.0

"""A sender's single-instance lease across a Redis outage (found reading the sender while the
soak restarted Redis): a renewal that fails because Redis is away must not end the renewing, or
the lease lapses while the sender goes on sending, and a standby instance starts beside it."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from fmn.senders.service import single_instance
from fmn.senders.state import MemorySenderState

pytestmark = pytest.mark.xdist_group("reliability")


class _RedisAwayOnce(MemorySenderState):
    def __init__(self) -> None:
        super().__init__()
        self.renewals = 0

    async def lease(self, name: str, owner: str, ttl: float) -> bool:
        self.renewals += 1
        if self.renewals == 2:  # the first renewal, while Redis restarts
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        return await super().lease(name, owner, ttl)


async def test_the_lease_is_still_renewed_after_a_renewal_failed() -> None:
    state = _RedisAwayOnce()
    stop = asyncio.Event()
    async with single_instance(state, "irc", ttl=0.3, stop=stop) as running:
        assert running
        # Renewals every 0.1 s: wait (bounded) for three more after the failed one.
        for _ in range(600):
            if state.renewals >= 5:
                break
            await asyncio.sleep(0.05)
        assert state.renewals >= 5, "renewing stopped at the failed renewal"
        assert not stop.is_set()
        # And a second instance still finds the lease held.
        assert not await state.lease("instance:irc", "someone else", 0.3)


class _SwallowsACancel(MemorySenderState):
    """A renewal whose Redis call takes a while and swallows a cancel that comes during it."""

    async def lease(self, name: str, owner: str, ttl: float) -> bool:
        if name in self._leases:  # a renewal, not the first take
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(5)
        return await super().lease(name, owner, ttl)


async def test_a_sender_leaves_its_lease_even_if_a_renewal_swallows_the_cancel() -> None:
    # Seen once: a stopped Matrix sender lived on for over an hour, renewing its lease every
    # second, so that no other instance could take over (reliability.md, finding 16).
    state = _SwallowsACancel()
    stop = asyncio.Event()
    async with asyncio.timeout(30):
        async with single_instance(state, "matrix", ttl=0.3, stop=stop) as running:
            assert running
            await asyncio.sleep(0.25)  # the first renewal (at 0.1 s) is in its Redis call
        await asyncio.sleep(0.5)  # a renewer left behind would renew again by now
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "matrix-lease" and not t.done()]
    assert await state.lease("instance:matrix", "another instance", 0.3)  # released

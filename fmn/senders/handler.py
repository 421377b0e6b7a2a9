"""The per-protocol part of a sender: check an address, send one notification, send a digest.
Everything else (acks, retries, de-duplication, holding and digests) is the shared loop's."""

from __future__ import annotations

import abc
from typing import ClassVar

from fmn.senders.digest import Digest
from fmn.sendqueue.workitem import Protocol, WorkItem


class Handler(abc.ABC):
    protocol: ClassVar[Protocol]
    # How many notifications this handler may send concurrently (SMTP connections, say).
    concurrency: int = 1
    # True: every item is delivered on its own, at once, whatever the user's delivery
    # preferences (quiet hours, digests, mute) and however many wait for the destination.
    immediate: ClassVar[bool] = False

    async def setup(self) -> None:
        """Connect and log in; called once before the first send."""
        return None

    async def stop(self) -> None:
        return None

    @abc.abstractmethod
    def check_address(self, address: str) -> None:
        """Raise PermanentError if the address is not valid for this protocol."""

    @abc.abstractmethod
    async def send(self, item: WorkItem) -> None:
        """Deliver one notification; raise PermanentError or TransientError on failure.
        Returning means the server accepted it."""

    @abc.abstractmethod
    async def send_digest(self, digest: Digest) -> None:
        """Deliver many notifications to one destination as one message."""

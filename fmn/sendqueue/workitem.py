"""The work item: what the consumer publishes on the private exchange and a sender delivers,
and how work items travel: several to an AMQP message (`pack`), which a sender splits again
into deliveries of their own (`split`), with the headers an item carries back from a retry
queue or into a dead-letter queue.

Defined once, here, for both sides. A work item carries everything a sender needs (no look-ups in
senders) and an idempotency key (bus message id + destination) so a redelivery sends nothing twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fmn.core.owners import TEAM_PREFIX, team_of
from fmn.transport.base import Delivery, Outgoing

log = logging.getLogger(__name__)

Protocol = Literal["email", "irc", "matrix", "web"]
PROTOCOLS: tuple[Protocol, ...] = ("email", "irc", "matrix", "web")
FORMAT_VERSION: Literal[1] = 1

# Headers of an item sent back by a retry queue (attempt, reason) or dead-lettered.
ATTEMPT_HEADER = "x-fmn-attempt"
REASON_HEADER = "x-fmn-reason"
FAILED_AT_HEADER = "x-fmn-failed-at"
ATTEMPTS_HEADER = "x-fmn-attempts"


def routing_key(protocol: str) -> str:
    """The private exchange's routing key for a protocol's queue."""
    return f"send.{protocol}"


# Several work items of one protocol travel in one AMQP message, one JSON object a line (JSON
# Lines): publishing is per message, so this divides the consumer's publishing cost by the batch.
# A message of one line is exactly one work item, as dead letters and retries always are.


def pack(items: Sequence[WorkItem], per_message: int) -> list[Outgoing]:
    """The AMQP messages carrying these work items: per protocol, up to per_message each."""
    by_protocol: dict[str, list[WorkItem]] = {}
    for item in items:
        by_protocol.setdefault(item.protocol, []).append(item)
    messages = []
    for protocol, same in by_protocol.items():
        for start in range(0, len(same), per_message):
            chunk = same[start : start + per_message]
            messages.append(
                Outgoing(
                    routing_key(protocol),
                    b"\n".join(item.to_bytes() for item in chunk),
                    # One item: its own key, as before batching; several: the first one's.
                    message_id=chunk[0].key if len(chunk) == 1 else f"{chunk[0].key}+{len(chunk)}",
                )
            )
    return messages


def unpack(body: bytes) -> list[bytes]:
    """The work items (each still as bytes) of an AMQP message body; a body that is not a batch
    is one item, readable or not, so nothing in it is skipped."""
    if b"\n" not in body:
        return [body]
    return [line for line in body.split(b"\n") if line.strip()] or [body]


def idempotency_key(message_id: str, protocol: str, address: str) -> str:
    return f"{message_id}/{protocol}/{address}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleRef(_Model):
    id: int
    name: str | None = None


class MessageInfo(_Model):
    """The bus message a notification is about."""

    id: str
    topic: str
    sent_at: dt.datetime
    app_name: str | None = None
    agent_name: str | None = None
    summary: str
    url: str | None = None
    severity: int = 20
    usernames: list[str] = Field(default_factory=list)
    packages: list[str] = Field(default_factory=list)


class EmailContent(_Model):
    subject: str
    text: str
    html: str
    # Metadata for filtering in mail clients, written by the sender as X-Fedora-Notify-<Name>
    # headers, for example {"Topic": ..., "Application": ..., "Packages": ..., "Users": ...}.
    metadata: dict[str, str] = Field(default_factory=dict)


class ChatContent(_Model):
    """One IRC line, or a Matrix message (text plus sanitized HTML)."""

    text: str
    html: str | None = None


class WebContent(_Model):
    """An inbox entry: a one-line subject and the message's text (the link is the message's)."""

    subject: str
    text: str


class WorkItem(_Model):
    version: Literal[1] = FORMAT_VERSION
    key: str
    protocol: Protocol
    address: str
    user: str  # the rules' owner
    # The group when the owner is one (a team rule): no unsubscribe link, the group's footer.
    team: str | None = None
    rules: list[RuleRef]
    message: MessageInfo
    email: EmailContent | None = None
    chat: ChatContent | None = None
    web: WebContent | None = None

    @model_validator(mode="before")
    @classmethod
    def _team_of_earlier_items(cls, data: Any) -> Any:
        # An item queued or held for a digest before the `team` field has only its owner's
        # name; a group's is `group:<name>` (fmn.core.owners).
        if isinstance(data, dict) and "team" not in data:
            user = data.get("user")
            if isinstance(user, str) and user.startswith(TEAM_PREFIX):
                return {**data, "team": team_of(user)}
        return data

    def to_bytes(self) -> bytes:
        # Fields left at None are left out: every one defaults to None, so nothing changes on
        # reading, and a sender of before the `web` field reads the other protocols' items.
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> WorkItem:
        return cls.model_validate_json(data)


# ---- in the sender: the deliveries of one AMQP message --------------------------------------
#
# The sender loop treats each work item as a delivery of its own; the message itself is acked
# once every part is settled. If any part asked to be given back (nack with requeue: Redis or
# the broker failing around it), the whole message is given back once the others are settled:
# its parts sent already are skipped on redelivery by their sent keys, and those passed on to a
# retry or dead-letter queue are remembered (fmn.senders.state.Memory).


def attempt_of(delivery: Delivery) -> int:
    """Attempts made before this delivery (0 for an item fresh from the consumer)."""
    return int(delivery.headers.get(ATTEMPT_HEADER, 0) or 0)


class _Whole:
    """The AMQP message behind the parts, and what is still unsettled of it."""

    def __init__(self, delivery: Delivery, parts: int) -> None:
        self.delivery = delivery
        self.unsettled = parts
        self.give_back = False

    async def settled(self, requeue: bool) -> None:
        self.unsettled -= 1
        self.give_back = self.give_back or requeue
        if self.unsettled:
            return
        if self.give_back:
            await self.delivery.nack(requeue=True)
        else:
            await self.delivery.ack()


class DeliveryPart(Delivery):
    """One work item of a message that carries several."""

    def __init__(self, whole: _Whole, body: bytes, number: int) -> None:
        source = whole.delivery
        self._whole = whole
        self._settled = False
        self.body = body
        self.routing_key = source.routing_key
        self.exchange = source.exchange
        self.message_id = f"{source.message_id or '(no id)'}#{number}"
        self.headers = source.headers
        self.redelivered = source.redelivered

    async def ack(self) -> None:
        await self._settle(requeue=False)

    async def nack(self, requeue: bool = True) -> None:
        # Without requeue a part is dropped like a message would be; the loop never does this
        # (it dead-letters through its own queue, then acks).
        await self._settle(requeue=requeue)

    async def _settle(self, requeue: bool) -> None:
        if self._settled:
            log.warning("part %s settled twice; the second is ignored", self.message_id)
            return
        self._settled = True
        await self._whole.settled(requeue)


def split(delivery: Delivery) -> list[Delivery]:
    """The deliveries to handle for one AMQP message: itself if it carries one work item."""
    bodies = unpack(delivery.body)
    if len(bodies) == 1:
        return [delivery]
    whole = _Whole(delivery, len(bodies))
    return [DeliveryPart(whole, body, number) for number, body in enumerate(bodies, 1)]

"""RabbitMQ through aio-pika: a robust connection, publisher confirms pipelined across a batch,
mandatory publishing so an unroutable work item is an error rather than a silent loss.

The consumer's hot path (publishing work items, acking bus messages) goes to aiormq, the channel
under aio-pika, without waiting for each frame to be written: aio-pika's publish holds the
channel's lock until its frame is on the socket, which serialises a batch's publishes."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

import aio_pika
import aiormq
import aiormq.abc
from aio_pika.abc import (
    AbstractChannel,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
    UnderlayConnection,
)
from aio_pika.exceptions import (
    AMQPError,
    ChannelInvalidStateError,
    ChannelPreconditionFailed,
    DeliveryError,
    PublishError,
)
from aiormq import spec

from fmn.transport.base import (
    Broker,
    Delivery,
    ExchangeType,
    Outgoing,
    PublishFailed,
    QueueSpec,
)
from fmn.transport.failover import FailoverConnection, printable
from fmn.transport.queue_types import QueueMismatch, QueueType, declared_arguments

log = logging.getLogger(__name__)

# What settling a delivery raises when its channel or connection is gone.
_CHANNEL_GONE = (AMQPError, ChannelInvalidStateError, ConnectionError)

# How often a consumer waiting for the robust connection looks whether it is back.
_RECONNECT_POLL = 0.25

_EXCHANGE_TYPES = {
    "topic": aio_pika.ExchangeType.TOPIC,
    "direct": aio_pika.ExchangeType.DIRECT,
    "fanout": aio_pika.ExchangeType.FANOUT,
}


class _InOrderAcks:
    """The acks of one channel's deliveries, sent as one `basic.ack` with `multiple` for each
    run of settled deliveries instead of one frame each. A delivery's ack waits until every
    earlier one on the channel is settled (acked here, or nacked on its own); the acks settled
    in one turn of the event loop go out as one frame, after that turn."""

    def __init__(self, channel: aiormq.abc.AbstractChannel) -> None:
        self.channel = channel
        self._outstanding: deque[int] = deque()  # delivery tags, in delivery order
        self._settled: dict[int, bool] = {}  # tag -> still to be acked (False: nacked already)
        self._ack_up_to = 0  # the highest tag that may be acked
        self._acked_up_to = 0  # the highest tag acked
        self._flushing: asyncio.Task[None] | None = None

    def delivered(self, tag: int) -> None:
        self._outstanding.append(tag)

    async def sent(self) -> None:
        """Until the acks settled so far are written (before the connection is closed)."""
        if self._flushing is not None:
            await asyncio.gather(self._flushing, return_exceptions=True)

    def settle(self, tag: int, ack: bool) -> None:
        self._settled[tag] = ack
        last = 0
        while self._outstanding and self._outstanding[0] in self._settled:
            head = self._outstanding.popleft()
            if self._settled.pop(head):
                last = head
        if last > self._ack_up_to:
            self._ack_up_to = last
            if self._flushing is None:
                self._flushing = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        try:
            await asyncio.sleep(0)  # let the other settles of this turn come in first
            while self._ack_up_to > self._acked_up_to:
                # Multiple-acks reach the socket in tag order: only this task sends them.
                last = self._acked_up_to = self._ack_up_to
                await self.channel.basic_ack(last, multiple=True, wait=False)
        except _CHANNEL_GONE as exc:
            # The broker puts back what was unacked on that channel and delivers it again.
            log.warning("could not ack up to delivery %d (%r)", self._ack_up_to, exc)
        finally:
            self._flushing = None


class _AmqpDelivery(Delivery):
    """A delivery read straight from aiormq's message: aio-pika's IncomingMessage (two dozen
    properties copied, a task of its own per delivery, a queue iterator) cost the consumer more
    than decoding the body."""

    __slots__ = ("_acks", "_channel", "_settled", "_tag")

    def __init__(
        self, message: aiormq.abc.DeliveredMessage, acks: _InOrderAcks | None = None
    ) -> None:
        delivery, properties = message.delivery, message.header.properties
        self._channel = message.channel
        self._tag: int | None = getattr(delivery, "delivery_tag", None)
        self._acks = acks if self._tag is not None else None
        self._settled = False
        if self._acks is not None and self._tag is not None:
            self._acks.delivered(self._tag)
        self.body = message.body
        self.routing_key = getattr(delivery, "routing_key", None) or ""
        self.exchange = getattr(delivery, "exchange", None) or ""
        self.message_id = properties.message_id
        self.headers = dict(properties.headers or {})
        self.redelivered = bool(getattr(delivery, "redelivered", False))

    async def ack(self) -> None:
        if self._settle("ack"):
            try:
                if self._acks is not None and self._tag is not None:
                    self._acks.settle(self._tag, ack=True)
                else:
                    await self._open_channel().basic_ack(self._tag or 0)
            except _CHANNEL_GONE as exc:
                self._gone("ack", exc)

    async def nack(self, requeue: bool = True) -> None:
        if self._settle("nack"):
            try:
                await self._open_channel().basic_nack(self._tag or 0, requeue=requeue)
                if self._acks is not None and self._tag is not None:
                    self._acks.settle(self._tag, ack=False)
            except _CHANNEL_GONE as exc:
                self._gone("nack", exc)

    def _settle(self, verb: str) -> bool:
        """Whether this delivery is still to settle: settling one twice would close the channel
        (an unknown delivery tag), and every delivery in flight on it would come again."""
        if self._settled:
            log.warning("message %s settled already; %s ignored", self.message_id, verb)
            return False
        self._settled = True
        return True

    def _open_channel(self) -> aiormq.abc.AbstractChannel:
        if self._channel.is_closed:
            raise ChannelInvalidStateError("the channel the message came on is closed")
        return self._channel

    def _gone(self, verb: str, exc: BaseException) -> None:
        # The channel it came on closed, before or while settling (connection lost, broker
        # restarted): the broker puts the message back and delivers it again; nothing is left
        # to settle here, and the caller must not fail for it.
        log.warning(
            "could not %s message %s (%r); the broker delivers it again", verb, self.message_id, exc
        )


class BrokerUnreachable(ConnectionError):
    """The broker could not be connected to, or refused this client; the message says why."""


_SSL_REASON = re.compile(r"\[SSL: (?P<code>[A-Z0-9_]+)\] (?P<text>[^(]+?)\s*\(")


def connect_failure(exc: BaseException, url: str = "") -> str:
    """Why a connection failed, in a few words: TLS refusals in particular, which the AMQP
    library reports as a communication error wrapping the SSL error's text."""
    text = str(exc)
    match = _SSL_REASON.search(text)
    if match is None:
        if "certfile=" in url and "reset" in text.lower():
            # Under TLS 1.3 the broker checks the client's certificate after the handshake
            # and may just close the socket: the client sees a reset, not the alert.
            return f"TLS: the broker refused this client's certificate ({text})"
        return text or repr(exc)
    code, detail = match["code"], match["text"]
    if code == "CERTIFICATE_VERIFY_FAILED":
        return f"TLS: the broker's certificate did not verify against the CA file ({detail})"
    if "ALERT" in code:
        return f"TLS: the broker refused this client's certificate ({detail})"
    return f"TLS: {detail}"


def _short_string(value: str | None) -> str | None:
    """An AMQP short string (at most 255 bytes): a longer value, such as the idempotency key of
    a bus message with a long id, is replaced by its SHA-256, rather than failing the publish."""
    if value is None or len(value) <= 63 or len(value.encode("utf-8", "replace")) <= 255:
        return value
    return hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()


class AmqpBroker(Broker):
    """One robust connection to RabbitMQ; with several URLs (a cluster's nodes), to the first
    that answers, and after a lost connection to the next one (fmn.transport.failover)."""

    def __init__(
        self,
        url: str | Sequence[str],
        connection_name: str = "fmn",
        client_properties: Mapping[str, Any] | None = None,
        queue_type: QueueType = "default",
    ) -> None:
        self.urls = [url] if isinstance(url, str) else list(url)
        if not self.urls:
            raise ValueError("no broker URL")
        self.url = self.urls[0]
        self.connection_name = connection_name
        self.client_properties = dict(client_properties or {})
        self.queue_type: QueueType = queue_type
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        # What each declared queue is, so a consuming channel can declare it again itself, and
        # the connection it was declared on: an exclusive queue went with that connection.
        self._specs: dict[str, QueueSpec] = {}
        self._declared_on: dict[str, UnderlayConnection | None] = {}
        self._closing = asyncio.Event()
        self._ack_runs: list[_InOrderAcks] = []

    async def connect(self) -> None:
        failures = []
        for first in range(len(self.urls)):
            # Each node in turn first: the robust connection fails fast on its first attempt.
            order = self.urls[first:] + self.urls[:first]
            connection = FailoverConnection(
                order,
                self.connection_name,
                client_properties={
                    **self.client_properties,
                    "connection_name": self.connection_name,
                },
            )
            try:
                await connection.connect()
            except (AMQPError, OSError) as exc:  # ssl.SSLError is an OSError
                # One line that says why, instead of a chained traceback from the AMQP library.
                where, why = printable(order[0]), connect_failure(exc, order[0])
                if first + 1 < len(self.urls):
                    log.warning("cannot connect to %s: %s; trying the next node", where, why)
                else:
                    log.error("cannot connect to %s: %s", where, why)
                failures.append((f"{where}: {why}", exc))
                await connection.close()
                continue
            self._connection = connection
            break
        else:
            raise BrokerUnreachable("; ".join(text for text, _ in failures)) from failures[-1][1]
        self._closing.clear()
        self._channel = await self._connection.channel(
            publisher_confirms=True, on_return_raises=True
        )

    async def close(self) -> None:
        self._closing.set()
        for acks in self._ack_runs:
            await acks.sent()
        self._ack_runs.clear()
        if self._connection is not None:
            await self._connection.close()
        self._connection = None
        self._channel = None

    @property
    def channel(self) -> AbstractChannel:
        if self._channel is None:
            raise RuntimeError("broker not connected")
        return self._channel

    async def declare_exchange(self, name: str, type: ExchangeType, durable: bool = True) -> None:
        if name.startswith("amq."):
            return
        await self.channel.declare_exchange(name, _EXCHANGE_TYPES[type], durable=durable)

    async def declare_queue(self, spec: QueueSpec) -> str:
        queue = await self._declare(self.channel, spec)
        self._specs[queue.name] = spec
        self._declared_on[queue.name] = self._connection_or_fail().transport
        return queue.name

    async def _declare(
        self, channel: AbstractChannel, spec: QueueSpec, name: str | None = None
    ) -> AbstractQueue:
        # A robust channel declares its queues again, with their bindings and consumers, after
        # a reconnection. An unnamed queue gets a client-chosen name that can be declared again.
        arguments = declared_arguments(spec, self.queue_type)
        try:
            queue = await channel.declare_queue(
                name or spec.name or None,
                durable=spec.durable,
                exclusive=spec.exclusive,
                auto_delete=spec.auto_delete,
                arguments=arguments or None,
            )
        except ChannelPreconditionFailed as exc:
            vhost = unquote(urlsplit(self.url).path[1:]) or "/"
            raise QueueMismatch.of(name or spec.name, self.queue_type, vhost, exc) from None
        for exchange, key in spec.bindings:
            await queue.bind(exchange, routing_key=key)
        return queue

    async def publish_many(self, exchange: str, messages: Sequence[Outgoing]) -> None:
        try:
            channel = await self.channel.get_underlay_channel()
        except _CHANNEL_GONE as exc:
            raise PublishFailed(f"the channel is closed: {exc!r}") from exc
        assert isinstance(channel, aiormq.Channel)  # its basic_publish takes `wait`

        async def one(out: Outgoing) -> Any:
            properties = spec.Basic.Properties(
                content_type=out.content_type,
                delivery_mode=2 if out.persistent else 1,
                message_id=_short_string(out.message_id),
                headers=dict(out.headers),
            )
            return await channel.basic_publish(
                out.body,
                exchange=exchange,
                routing_key=out.routing_key,
                properties=properties,
                mandatory=True,
                wait=False,
            )

        # All publishes go out before any confirm is awaited: one round trip for the batch.
        results = await asyncio.gather(*(one(m) for m in messages), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            first = failures[0]
            # A closed channel (connection lost mid-batch) is a publish to try again too.
            if isinstance(first, (DeliveryError, PublishError, *_CHANNEL_GONE)):
                raise PublishFailed(f"{len(failures)} of {len(messages)} not confirmed: {first!r}")
            raise first

    async def consume(  # type: ignore[override]
        self,
        queue: str,
        prefetch: int = 10,
        acks_in_order: bool = False,
        on_resume: Callable[[], None] | None = None,
    ) -> AsyncIterator[Delivery]:
        connection = self._connection_or_fail()
        # Declared on the consuming channel (not only looked up), so that this channel restores
        # the queue after a reconnection; an exclusive queue, gone with the old connection, is
        # created again with its bindings.
        queue_spec = self._specs.get(queue)
        received: asyncio.Queue[Delivery] = asyncio.Queue()
        acks: _InOrderAcks | None = None
        subscriptions: list[asyncio.Task[None]] = []
        channel: AbstractRobustChannel
        q: AbstractQueue

        async def deliver(message: aiormq.abc.DeliveredMessage) -> None:
            nonlocal acks
            if acks_in_order and (acks is None or acks.channel is not message.channel):
                # A new channel (the first, or one reopened after a reconnection): its delivery
                # tags start again.
                acks = _InOrderAcks(message.channel)
                self._ack_runs.append(acks)
            received.put_nowait(_AmqpDelivery(message, acks))

        async def subscribe(*again: Any) -> None:
            # The consumer is aiormq's, not aio-pika's, so it is this channel's to restore:
            # after the robust channel has reopened and declared the queue again, or when the
            # broker cancelled it (the queue was deleted: declared again, as aio-pika would).
            # `again` is empty only for the first subscription.
            try:
                underlay = await channel.get_underlay_channel()
                if cancelled not in underlay.on_consumer_cancel_callbacks:
                    underlay.on_consumer_cancel_callbacks.add(cancelled)
                await underlay.basic_consume(q.name, deliver)
            except Exception as exc:
                if again:
                    log.error("could not consume from %s again: %r", q.name, exc)
                raise
            if again and on_resume is not None:
                on_resume()

        def cancelled(frame: spec.Basic.Cancel) -> None:
            log.warning("the broker cancelled the consumer of %s; consuming again", q.name)

            async def again() -> None:
                if queue_spec is not None:
                    await self._declare(channel, queue_spec, q.name)
                await subscribe(frame)

            subscriptions.append(asyncio.create_task(again()))

        # The first channel: opened, set up and subscribed on a connection that is up. If that
        # connection goes meanwhile (a cut right after the process connected), the channel is
        # dropped and all of it done again once the robust connection is back, not failed.
        transport: UnderlayConnection | None = None
        while True:
            transport = await self._connected(connection, transport)
            if transport is None:
                return  # the broker was closed while waiting
            channel = connection.channel()
            try:
                await channel
                await channel.set_qos(prefetch_count=prefetch)
                if queue_spec is not None:
                    q = await self._declare(channel, queue_spec, queue)
                else:
                    q = await channel.declare_queue(queue, passive=True)
                await subscribe()
                break
            except Exception as exc:
                if connection.connected.is_set() and not transport.connection.is_closed:
                    raise  # the connection is up: something else is wrong
                log.warning(
                    "the connection was lost before consuming from %s (%r); waiting for it",
                    queue,
                    exc,
                )
                with contextlib.suppress(Exception):
                    await channel.close()  # else the robust connection would reopen it
        if on_resume is not None and self._declared_on.get(queue, transport) is not transport:
            # Declared on a connection that is gone: what was routed in between never reached
            # an exclusive queue, as after a reopened channel.
            on_resume()
        channel.reopen_callbacks.add(subscribe)
        try:
            while True:
                yield await received.get()
        finally:
            channel.reopen_callbacks.discard(subscribe)
            for task in subscriptions:
                task.cancel()
            if not channel.is_closed:
                await channel.close()

    async def _connected(
        self, connection: AbstractRobustConnection, lost: UnderlayConnection | None
    ) -> UnderlayConnection | None:
        """The robust connection's transport once it is up and is not `lost`; None once this
        broker is closed. A stop cancels the wait."""
        while not self._closing.is_set():
            transport = connection.transport
            if (
                transport is not None
                and transport is not lost
                and connection.connected.is_set()
                and not transport.connection.is_closed
            ):
                return transport
            # aio-pika sets no event for "a new connection is made": look again in a moment.
            await asyncio.sleep(_RECONNECT_POLL)
        return None

    def _connection_or_fail(self) -> AbstractRobustConnection:
        if self._connection is None:
            raise RuntimeError("broker not connected")
        return self._connection

    async def queue_size(self, queue: str) -> int:
        # aio-pika's robust channel caches declared queues with their first counts: ask the server.
        underlay = await self.channel.get_underlay_channel()
        result = await underlay.queue_declare(queue, passive=True)
        return int(result.message_count or 0)

    async def get(self, queue: str) -> Delivery | None:
        channel = await self.channel.get_underlay_channel()
        message = await channel.basic_get(queue, no_ack=False)
        if isinstance(message.delivery, spec.Basic.GetEmpty):
            return None
        return _AmqpDelivery(message)

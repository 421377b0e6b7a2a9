"""Assembling and running one sender process from the settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import uuid
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fmn.core.settings import ConfigError, Settings
from fmn.core.tasks import cancel_and_wait
from fmn.db.session import make_engine, make_sessionmaker
from fmn.senders.handler import Handler
from fmn.senders.loop import LoopConfig, SenderLoop
from fmn.senders.state import DeliveryLog, PreferenceReader, SenderState, make_state
from fmn.transport import send_broker

log = logging.getLogger(__name__)


def check_cleartext_credentials(protocol: str, settings: Settings) -> None:
    """ConfigError when a password would cross the network without TLS, unless the operator
    allowed it explicitly."""
    email, irc = settings.senders.email, settings.senders.irc
    if protocol == "email" and email.password and email.tls == "none":
        if not email.allow_insecure_auth:
            raise ConfigError(
                "senders.email.password would be sent without TLS (senders.email.tls = "
                '"none"): use "starttls" or "tls", or set senders.email.allow_insecure_auth'
            )
    if protocol == "irc" and irc.sasl_password and not irc.tls:
        if not irc.allow_insecure_auth:
            raise ConfigError(
                "senders.irc.sasl_password would be sent without TLS (senders.irc.tls = "
                "false): turn TLS on, or set senders.irc.allow_insecure_auth"
            )


def make_handler(
    protocol: str,
    settings: Settings,
    state: SenderState,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> Handler:
    check_cleartext_credentials(protocol, settings)
    if protocol == "email":
        from fmn.core.secrets import configured_keys
        from fmn.senders.email import EmailHandler, MailSettings

        email = settings.senders.email
        return EmailHandler(
            email,
            MailSettings(
                from_address=email.from_address,
                list_id=email.list_id,
                public_url=settings.public_url,
                secret_keys=configured_keys(settings.api)[1],
            ),
        )
    if protocol == "irc":
        import ssl

        from fmn.senders.irc import IRCHandler

        irc = settings.senders.irc
        context = ssl.create_default_context(cafile=irc.ca_file) if irc.ca_file else None
        return IRCHandler(irc, context)
    if protocol == "matrix":
        from fmn.senders.matrix import MatrixHandler

        return MatrixHandler(settings.senders.matrix, state)
    if protocol == "web":
        from fmn.inbox.events import make_events
        from fmn.inbox.push import WebPusher
        from fmn.senders.web import WebHandler

        return WebHandler(
            settings.web,
            sessionmaker,
            make_events(settings.cache.url),
            WebPusher.from_settings(settings, sessionmaker),
        )
    raise ValueError(f"unknown protocol {protocol!r}")


def loop_config(settings: Settings) -> LoopConfig:
    senders = settings.senders
    return LoopConfig(
        exchange=settings.send_queue.exchange,
        retry_delays=settings.send_queue.retry_delays,
        prefetch=settings.send_queue.sender_prefetch,
        digest_threshold=senders.digest_threshold,
        backlog_digest_delay=senders.backlog_digest_delay,
        daily_digest_hour=senders.daily_digest_hour,
        poll_interval=senders.digest_poll_interval,
    )


# One connection, one nick or one bot: a second instance stands by until the first is gone.
SINGLE_INSTANCE = ("irc", "matrix")


async def run_sender(
    protocol: str,
    settings: Settings,
    stop: asyncio.Event | None = None,
    handler: Handler | None = None,
) -> None:
    """Run one protocol's sender until `stop` is set (or SIGTERM/SIGINT when run from the CLI),
    with the handler the settings call for, or with `handler` (the embedded default's stand-ins
    for IRC and Matrix)."""
    stop = stop or asyncio.Event()
    senders = settings.senders
    state = make_state(senders.state_url or settings.cache.url, senders.sent_key_ttl)
    try:
        if protocol in SINGLE_INSTANCE:
            async with single_instance(state, protocol, senders.instance_lease, stop) as mine:
                if mine:
                    await _serve(protocol, settings, state, stop, handler)
        else:
            await _serve(protocol, settings, state, stop, handler)
    finally:
        await state.close()


@contextlib.asynccontextmanager
async def single_instance(
    state: SenderState, protocol: str, ttl: float, stop: asyncio.Event
) -> AsyncIterator[bool]:
    """Hold the protocol's lease while the block runs (yields False if `stop` came first); if the
    lease is lost (say Redis was flushed and another instance took it), `stop` is set."""
    name = f"instance:{protocol}"
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    waiting_logged = False
    while not await state.lease(name, owner, ttl):
        if not waiting_logged:
            log.info("another %s sender is running; standing by", protocol)
            waiting_logged = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), ttl / 3)
        if stop.is_set():
            yield False
            return

    leaving = asyncio.Event()

    async def renew() -> None:
        while not leaving.is_set():
            await asyncio.sleep(ttl / 3)
            if leaving.is_set():
                return
            try:
                held = await state.lease(name, owner, ttl)
            except Exception as exc:
                # Redis away for a moment (a restart): try again at the next renewal. Ending
                # here would let the lease lapse for good while this sender goes on, and a
                # standby instance would then start beside it.
                log.warning("could not renew the %s sender lease (%r); will retry", protocol, exc)
                continue
            if not held:
                log.error("lost the %s sender lease to another instance; stopping", protocol)
                stop.set()
                return

    renewer = asyncio.create_task(renew(), name=f"{protocol}-lease")
    try:
        yield True
    finally:
        leaving.set()
        renewer.cancel()
        # Bounded, and the loop looks at `leaving`: a cancel swallowed inside a renewal's Redis
        # call kept a stopped sender alive, renewing its lease, for over an hour (reliability.md,
        # finding 16).
        await asyncio.wait({renewer}, timeout=ttl)
        with contextlib.suppress(Exception):
            await state.release_lease(name, owner)


async def _serve(
    protocol: str,
    settings: Settings,
    state: SenderState,
    stop: asyncio.Event,
    handler: Handler | None,
) -> None:
    senders = settings.senders
    engine = make_engine(settings.database)
    sessionmaker = make_sessionmaker(engine)
    delivery_log = DeliveryLog(sessionmaker, senders.log_flush_interval)
    preferences = PreferenceReader(sessionmaker, senders.user_settings_ttl)
    broker = send_broker(settings.send_queue, f"fmn sender {protocol}")
    handler = handler or make_handler(protocol, settings, state, sessionmaker)
    await broker.connect()
    try:
        await handler.setup()
        delivery_log.start()
        loop = SenderLoop(handler, broker, state, delivery_log, preferences, loop_config(settings))
        task = asyncio.create_task(loop.run(), name=f"sender-{protocol}")
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        await cancel_and_wait(stopper)
        await cancel_and_wait(task)  # raises what the loop ended with, if it failed
    finally:
        # Unacked work items return to the queue when the connection closes. An in-process
        # broker is shared with the rest of the process (`fmn run`): it stays open.
        if not settings.send_queue.in_process:
            await broker.close()
        await handler.stop()
        await delivery_log.close()
        await engine.dispose()


def run_sender_process(protocol: str, settings: Settings) -> None:
    from fmn.core.metrics import serve_metrics
    from fmn.core.task_dump import dump_tasks_on_sigusr1

    serve_metrics(settings.senders.metrics_port)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        dump_tasks_on_sigusr1(loop)
        log.info("fmn sender %s starting", protocol)
        await run_sender(protocol, settings, stop)
        log.info("fmn sender %s stopped", protocol)

    asyncio.run(main())

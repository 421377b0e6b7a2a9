"""Starting and stopping the parts of `fmn run` in one event loop: the SMTP sink, the consumer,
one sender per protocol, the API (uvicorn, in-process, with the built-in OIDC provider and the
dev routes) and the demo feed. Ctrl-C or SIGTERM stops them in order, each within a bound."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sqlite3
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import click
import uvicorn
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from fmn.api.app import create_app
from fmn.api.frontend import CHECKOUT_DIST, frontend_dir
from fmn.consumer.service import Consumer
from fmn.core.tasks import cancel_and_wait
from fmn.db import migrations
from fmn.dev.chat import LoggedChat, LoggedIRC, LoggedMatrix
from fmn.dev.embedded import IDP_PATH, Embedded
from fmn.dev.feed import Feed, load_corpus, rename_map, shown
from fmn.dev.idp import Client, IdentityProvider
from fmn.dev.idp_http import make_idp_router
from fmn.dev.mailsink import MailSink
from fmn.dev.outbox import Outbox
from fmn.dev.routes import PREFIX as DEV_PREFIX
from fmn.dev.routes import DevInfo, DevLogin, make_dev_router
from fmn.directory.local import DirectoryData
from fmn.senders.service import run_sender
from fmn.sendqueue.workitem import PROTOCOLS
from fmn.transport import bus_broker

log = logging.getLogger(__name__)

# Seconds each stage of the shutdown may take before it is cut short.
STOP_TIMEOUT = 5.0


class RunnerError(Exception):
    """`fmn run` cannot start; the message says why in one line."""


def migrate(url: str) -> None:
    """Create or upgrade the schema; an SQLite file also goes to WAL mode, so the API, the
    consumer and the senders can read while one of them writes."""
    try:
        migrations.upgrade(url)
    except (OperationalError, DBAPIError, OSError) as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise RunnerError(f"database {url!r}: {reason}") from None
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        with contextlib.closing(sqlite3.connect(parsed.database)) as db:
            db.execute("PRAGMA journal_mode=WAL")


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The runner handles SIGINT and SIGTERM for every part, uvicorn included.
        yield


class Runner:
    def __init__(self, embedded: Embedded) -> None:
        self.embedded = embedded
        self.stop = asyncio.Event()
        self.outbox = Outbox(embedded.settings.dev.outbox_size)
        self.sink: MailSink | None = None
        self.consumer: Consumer | None = None
        self.server: _Server | None = None
        self.feed: Feed | None = None
        self.feed_note = ""
        self._tasks: dict[asyncio.Task[Any], str] = {}

    async def main(self) -> int:
        """Run until a signal (exit status 0) or until a part fails (1)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal)
        listening = self._bind()
        failed = True
        try:
            if await self._start(listening):
                self._banner()
                failed = await self._wait()
            else:
                failed = False  # stopped while starting
        finally:
            await self._shutdown()
        return 1 if failed else 0

    def _on_signal(self) -> None:
        if self.stop.is_set():
            log.warning("stopping at once")
            os._exit(130)
        log.info("stopping (press Ctrl-C again to stop at once)")
        self.stop.set()

    def _bind(self) -> socket.socket:
        api = self.embedded.settings.api
        family = socket.AF_INET6 if ":" in api.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((api.host, api.port))
        except OSError as exc:
            sock.close()
            raise RunnerError(f"cannot listen on {api.host}:{api.port}: {exc.strerror}") from None
        return sock

    def _spawn(self, name: str, coroutine: Coroutine[Any, Any, Any]) -> None:
        self._tasks[asyncio.create_task(coroutine, name=name)] = name

    async def _unless_stopped(self, coroutine: Coroutine[Any, Any, Any]) -> bool:
        """Await `coroutine`; False if a stop came first (then it is cancelled)."""
        task = asyncio.create_task(coroutine)
        stopper = asyncio.create_task(self.stop.wait())
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if task.done():
            task.result()
            return True
        await cancel_and_wait(task)
        return False

    # -- start ---------------------------------------------------------------------------------

    async def _start(self, listening: socket.socket) -> bool:
        embedded = self.embedded
        if embedded.email:
            self.sink = MailSink(self.outbox, port=embedded.settings.dev.smtp_port)
            await self.sink.start()
            embedded.with_smtp_sink(self.sink.host, self.sink.port)
        settings = embedded.settings
        # The consumer first: the rule and bus queues exist before anything publishes.
        self.consumer = Consumer(settings, name="fmn run")
        if not await self._unless_stopped(self.consumer.start()):
            return False
        self._spawn("consumer", self.consumer.run())
        for protocol in PROTOCOLS:  # web too: the inbox fills from the feed
            self._spawn(f"{protocol} sender", self._sender(protocol))
        app = create_app(settings, extra_routers=self._routers())
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
        self.server = _Server(config)
        self._spawn("api", self.server.serve(sockets=[listening]))
        if not await self._unless_stopped(self._serving()):
            return False
        feed = await asyncio.to_thread(self._make_feed)
        if feed is not None:
            await feed.broker.connect()
            self.feed = feed
            self._spawn("feed", feed.run(self.stop))
        return True

    async def _serving(self) -> None:
        assert self.server is not None
        while not self.server.started:
            if any(self._tasks[t] == "api" and t.done() for t in self._tasks):
                raise RunnerError("the API server did not start")
            await asyncio.sleep(0.05)

    def _sender(self, protocol: str) -> Coroutine[Any, Any, None]:
        settings, stop = self.embedded.settings, self.stop
        stand_ins: dict[str, type[LoggedChat]] = {"irc": LoggedIRC, "matrix": LoggedMatrix}
        if protocol in stand_ins and getattr(self.embedded, protocol):
            return run_sender(protocol, settings, stop, stand_ins[protocol](self.outbox))
        return run_sender(protocol, settings, stop)

    def _routers(self) -> list[Any]:
        embedded = self.embedded
        if not embedded.oidc:
            # The stand-ins' routes only with the stand-in log-in, which is asked for
            # explicitly (`fmn run --builtin-login`).
            return []
        oidc = embedded.settings.oidc
        provider = IdentityProvider(
            oidc.provider_url,
            embedded.users,
            [
                Client(oidc.frontend_client_id, None, embedded.origins),
                Client(oidc.client_id, oidc.client_secret, grant_types=()),
            ],
            extra_scopes=oidc.scopes,
        )
        return [make_dev_router(self.outbox, self._info()), make_idp_router(provider, IDP_PATH)]

    def _info(self) -> DevInfo:
        embedded = self.embedded
        return DevInfo(
            embedded=embedded.parts,
            logins=[
                DevLogin(username=u.username, name=u.name, email=u.email, groups=list(u.groups))
                for u in embedded.users
            ]
            if embedded.oidc
            else [],
            smtp_sink=f"{self.sink.host}:{self.sink.port}" if self.sink else None,
        )

    def _make_feed(self) -> Feed | None:
        settings = self.embedded.settings
        dev = settings.dev
        if dev.feed_interval <= 0:
            self.feed_note = "off (dev.feed_interval = 0)"
            return None
        corpus = Path(dev.corpus_dir)
        read = load_corpus(corpus) if corpus.is_dir() else []
        messages = shown(read)
        if read and not messages:
            self.feed_note = f"off: no message of {corpus} has a schema that renders it"
            log.warning("demo feed %s", self.feed_note)
            return None
        if not messages:
            self.feed_note = (
                f"off: no corpus at {corpus.resolve()} (set dev.corpus_dir to a folder of "
                "JSON Lines bus messages)"
            )
            log.warning("demo feed %s", self.feed_note)
            return None
        data = DirectoryData.from_file(settings.directory.local_file or "")
        users = [u.username for u in self.embedded.users]
        names = rename_map(messages, users, dev.feed_names_per_user)
        self.feed_note = (
            f"{len(messages)} messages from {corpus} (of {len(read)}: those their schema "
            f"renders), one every {dev.feed_interval:g} s"
        )
        return Feed(
            bus_broker(settings.bus, "fmn run (feed)"),
            settings.bus.exchange,
            messages,
            names,
            interval=dev.feed_interval,
            sample_users=users,
            projects=data.projects,
        )

    def _banner(self) -> None:
        embedded = self.embedded
        lines = [
            "",
            f"fmn is running: {embedded.url}/",
            f"  embedded stand-ins: {', '.join(embedded.parts) or 'none'}",
        ]
        if embedded.oidc:
            lines.append("  log in as (no password, pick a name on the login page):")
            for user in embedded.users:
                groups = f" — groups: {', '.join(user.groups)}" if user.groups else ""
                lines.append(f"    {user.username:8} {user.email}{groups}")
        if self.sink is not None:
            lines.append(
                f"  mail goes to the SMTP sink on {self.sink.host}:{self.sink.port}; read it at "
                f"{embedded.url}{DEV_PREFIX}/mail (logged in) and in the log below"
            )
        if embedded.irc or embedded.matrix:
            lines.append(f"  IRC and Matrix messages: in the log and at {DEV_PREFIX}/chat")
        lines.append(f"  demo feed: {self.feed_note or 'off'}")
        if frontend_dir(embedded.settings.api) is None and CHECKOUT_DIST.parent.is_dir():
            lines.append(
                "  the web app is not built: `make run` builds it (or cd frontend && npm ci && "
                "npm run build); the API answers meanwhile"
            )
        elif frontend_dir(embedded.settings.api) is None:
            # An installed package: the web app is built from a checkout and pointed at.
            lines.append(
                "  no web app: set api.frontend_dir (FMN_API__FRONTEND_DIR) to a built "
                "frontend/dist; the API answers meanwhile"
            )
        lines.append("  Ctrl-C stops everything.")
        click.echo("\n".join(lines) + "\n")

    # -- run and stop --------------------------------------------------------------------------

    async def _wait(self) -> bool:
        """Until the stop signal (False) or a part ending on its own (True: failed)."""
        stopper = asyncio.create_task(self.stop.wait())
        done, _ = await asyncio.wait({stopper, *self._tasks}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        failed = False
        for task in done:
            if task is stopper:
                continue
            failed = True
            error = None if task.cancelled() else task.exception()
            log.error("%s stopped unexpectedly", self._tasks[task], exc_info=error)
        return failed

    async def _shutdown(self) -> None:
        self.stop.set()  # the feed and the senders
        if self.server is not None:
            self.server.should_exit = True
            await self._finish({t for t, name in self._tasks.items() if name == "api"})
        if self.consumer is not None:
            await self.consumer.stop()
        await self._finish(set(self._tasks))
        if self.feed is not None and not self.embedded.settings.bus.in_process:
            await self.feed.broker.close()  # an in-process broker is the consumer's too
        if self.sink is not None:
            await self.sink.stop()

    async def _finish(self, tasks: set[asyncio.Task[Any]]) -> None:
        pending = {t for t in tasks if not t.done()}
        if pending:
            _, late = await asyncio.wait(pending, timeout=STOP_TIMEOUT)
            for task in late:
                log.warning("%s did not stop in time; cancelled", self._tasks[task])
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.debug("%s ended with %r", self._tasks[task], task.exception())

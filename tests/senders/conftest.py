"""Fixtures for the sender tests: real RabbitMQ, Redis and PostgreSQL (from tests/conftest.py),
and a real SMTP server. IRC and Matrix servers have their own fixtures beside their tests."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from fmn.core.settings import Settings
from fmn.senders.service import run_sender
from fmn.sendqueue.topology import declare_send_topology
from fmn.transport import Broker, make_broker
from tests.harness.matrix_server import Account, MatrixReader, Synapse
from tests.harness.signing import SIGNING_KEY
from tests.harness.smtp_server import SMTPServer

# Short delays so retries and digests happen within a test's patience.
RETRY_DELAYS = [0.3, 0.6, 1.0]


def sender_settings(
    amqp_url: str,
    redis_url: str,
    pg_url: str,
    exchange: str,
    retry_delays: list[float] = RETRY_DELAYS,
    **senders: Any,
) -> Settings:
    email = {"smtp_port": 25, "smtp_host": "127.0.0.1", **senders.pop("email", {})}
    return Settings(
        public_url="https://notifications.example.org",
        database={"url": pg_url},
        cache={"url": redis_url},
        send_queue={"amqp_url": amqp_url, "exchange": exchange, "retry_delays": retry_delays},
        api={"secret_keys": [SIGNING_KEY]},
        senders={
            "digest_poll_interval": 0.1,
            "log_flush_interval": 0.1,
            "backlog_digest_delay": 0.5,
            "email": email,
            **senders,
        },
    )


@pytest.fixture
def exchange() -> str:
    return f"fmn.send.{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def broker(amqp_url: str, exchange: str) -> AsyncIterator[Broker]:
    b = make_broker(amqp_url, connection_name="fmn tests")
    await b.connect()
    await declare_send_topology(b, exchange, RETRY_DELAYS)
    yield b
    await b.close()


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    server = SMTPServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def email_settings(
    amqp_url: str,
    redis_url: str,
    pg_url: str,
    exchange: str,
    smtp: SMTPServer,
    redis_client: aioredis.Redis,
) -> Settings:
    return sender_settings(
        amqp_url, redis_url, pg_url, exchange, email={"smtp_port": smtp.port, "connections": 2}
    )


@contextlib.asynccontextmanager
async def running(protocol: str, settings: Settings) -> AsyncIterator[asyncio.Task[None]]:
    """A sender running in this process until the block ends."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_sender(protocol, settings, stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


# One homeserver per test module that asks for it (it takes seconds to start).
_people = itertools.count(1)


@pytest.fixture(scope="module")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synapse]:
    server = Synapse(tmp_path_factory.mktemp("synapse"))
    server.start(timeout=300)  # 90 s was not enough on the shared machine at load 35
    yield server
    server.stop()


@pytest.fixture(scope="module")
def bot(synapse: Synapse) -> Account:
    return synapse.register("notifs-bot", admin=True)


@pytest.fixture
async def person(synapse: Synapse) -> AsyncIterator[MatrixReader]:
    reader = await synapse.reader(synapse.register(f"person{next(_people)}"))
    yield reader
    await reader.close()


MatrixSettings = Callable[..., Settings]


@pytest.fixture
def matrix_settings_for(
    amqp_url: str,
    redis_url: str,
    pg_url: str,
    exchange: str,
    synapse: Synapse,
    bot: Account,
    redis_client: aioredis.Redis,  # flushed: no room or sent key of another test
) -> MatrixSettings:
    """The Matrix sender's settings on this test's queues, Redis, database and homeserver: a
    test gives only what it changes (another account or exchange, sender or Matrix settings)."""

    def make(
        *,
        account: Account = bot,
        exchange: str = exchange,
        senders: dict[str, Any] | None = None,
        retry_delays: list[float] = RETRY_DELAYS,
        **matrix: Any,
    ) -> Settings:
        return sender_settings(
            amqp_url,
            redis_url,
            pg_url,
            exchange,
            retry_delays,
            **(senders or {}),
            matrix={
                "homeserver": synapse.url,
                "user_id": account.user_id,
                "access_token": account.access_token,
                "messages_per_second": 100,
                "burst": 100,
                **matrix,
            },
        )

    return make

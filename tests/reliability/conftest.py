"""Fixtures of the reliability tests: the consumer tests' RabbitMQ client, a TCP proxy to
RabbitMQ that a test can cut, and Fedora's bus (a private TLS node,
tests/reliability/tls_node.py). Every module here puts its tests in the xdist group
"reliability", so that they run one after the other on one worker (`--dist loadgroup`)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from bench.soak_proxy import Proxy
from fmn.consumer.service import Consumer
from fmn.core.settings import Settings
from fmn.db.session import make_sessionmaker
from fmn.transport import make_broker

# The consumer tests' fixtures: a real consumer on RabbitMQ and PostgreSQL.
from tests.consumer.conftest import (  # noqa: F401 - fixtures
    client_broker,
    consumer_db_url,
    consumer_settings,
    directory,
    sessionmaker,
    start_consumer,
)
from tests.reliability.tls_node import Authority, TLSBus, TLSNode


@pytest.fixture
async def amqp_proxy() -> AsyncIterator[Proxy]:
    proxy = Proxy(("127.0.0.1", 5672))
    await proxy.start()
    yield proxy
    await proxy.close()


@pytest.fixture(scope="session")
def tls_bus() -> Iterator[TLSBus]:
    """Fedora's bus, one node for the session (it takes a while to start); a test that stops
    it starts it again."""
    base = Path(tempfile.mkdtemp(prefix="fmn-tls-"))
    base.chmod(0o755)
    pki = base / "pki"
    pki.mkdir()
    pki.chmod(0o755)
    ca = Authority(pki, "fedora-test")
    node = TLSNode(base, ca)
    try:
        node.start()
        node.set_up()
        yield node, ca, pki
    finally:
        node.remove()
        shutil.rmtree(base, ignore_errors=True)


def consumer_on(
    settings: Settings, user_directory: Any, amqp_url: str, db_url: str, name: str
) -> tuple[Consumer, AsyncEngine]:
    """A consumer of `settings` reaching RabbitMQ and PostgreSQL at these URLs (a proxy's),
    and its engine to dispose of."""
    engine = create_async_engine(db_url, poolclass=NullPool)
    consumer = Consumer(
        settings,
        directory=user_directory,
        sessionmaker=make_sessionmaker(engine),
        bus=make_broker(amqp_url, name),
        send=make_broker(amqp_url, f"{name} (send)"),
    )
    return consumer, engine

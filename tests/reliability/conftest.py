"""Fixtures of the reliability tests: the consumer tests' RabbitMQ client, and a TCP proxy to
RabbitMQ that a test can cut. Every module here puts its tests in the xdist group
"reliability", so that they run one after the other on one worker (`--dist loadgroup`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bench.soak_proxy import Proxy

# The consumer tests' fixtures: a real consumer on RabbitMQ and PostgreSQL.
from tests.consumer.conftest import (  # noqa: F401 - fixtures
    client_broker,
    consumer_db_url,
    consumer_settings,
    directory,
    sessionmaker,
    start_consumer,
)


@pytest.fixture
async def amqp_proxy() -> AsyncIterator[Proxy]:
    proxy = Proxy(("127.0.0.1", 5672))
    await proxy.start()
    yield proxy
    await proxy.close()

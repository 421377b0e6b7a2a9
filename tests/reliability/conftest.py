"""Fixtures of the reliability tests: the consumer tests' RabbitMQ client, and a TCP proxy to
RabbitMQ that a test can cut. Every module here puts its tests in the xdist group
"reliability", so that they run one after the other on one worker (`--dist loadgroup`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bench.soak_proxy import Proxy
from tests.consumer.conftest import client_broker  # noqa: F401 - a fixture, used here


@pytest.fixture
async def amqp_proxy() -> AsyncIterator[Proxy]:
    proxy = Proxy(("127.0.0.1", 5672))
    await proxy.start()
    yield proxy
    await proxy.close()

"""Fedora's bus connection: TLS with an x509 client certificate and SASL EXTERNAL (the
rabbitmq_auth_mechanism_ssl plugin), on a private RabbitMQ node of the tests' own
(tests/reliability/tls_node.py), configured through a fedora-messaging TOML file. A client
certificate from another CA, or an expired one, is refused."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from fmn.core.settings import BusSettings
from fmn.transport import make_broker
from fmn.transport.amqp import BrokerUnreachable
from tests.reliability.tls_node import (
    NEEDS_ROOT,
    USER,
    Authority,
    TLSBus,
    fedora_messaging_toml,
)
from tests.transport.fedora_bus import broker_from, round_trip

pytestmark = [pytest.mark.xdist_group("reliability"), NEEDS_ROOT]


async def test_client_certificate_login(tls_bus: TLSBus) -> None:
    node, ca, pki = tls_bus
    cert, key = ca.issue(USER)
    config = fedora_messaging_toml(pki / "good.toml", node, ca.cert_file, cert, key)
    async with broker_from(config) as broker:
        await round_trip(broker)


@pytest.mark.parametrize("wrong", ["another CA", "expired"])
async def test_wrong_certificate_is_refused(
    tls_bus: TLSBus, caplog: pytest.LogCaptureFixture, wrong: str
) -> None:
    node, ca, pki = tls_bus
    if wrong == "expired":
        cert, key = ca.issue(USER, age=dt.timedelta(days=60))
    else:
        cert, key = Authority(pki, "rogue").issue(USER)
    config = fedora_messaging_toml(pki / "wrong.toml", node, ca.cert_file, cert, key)
    bus = BusSettings(fedora_messaging_config=str(config))
    broker = make_broker(bus.amqp_url, "fmn consumer", bus.client_properties)
    caplog.set_level(logging.ERROR)
    with pytest.raises(BrokerUnreachable, match="refused this client's certificate"):
        await broker.connect()
    await broker.close()
    [line] = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    # The alert itself, or (TLS 1.3: the broker checks after the handshake) a reset.
    assert line.startswith(
        f"cannot connect to {node.amqps_url('/pubsub')}: TLS: the broker "
        "refused this client's certificate ("
    ), line
    assert str(pki) not in line  # the URL's query, which names the key files, is left out

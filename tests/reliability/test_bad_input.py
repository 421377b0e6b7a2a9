"""Bad input at scale: malformed bus messages (bodies, headers of the wrong types, odd topics,
huge bodies, real schema names with bodies that do not fit them) published on RabbitMQ to a real
`fmn consumer` process. After each batch of them a good message must still be turned into its
notification, and the process must still be running, with no error it did not handle."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import uuid
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pika
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from bench.soak_procs import FmnProcess, write_config
from fmn.db import migrations
from fmn.sendqueue.topology import send_queue
from fmn.sendqueue.workitem import unpack
from tests.harness import services
from tests.harness.signing import SIGNING_KEY

pytestmark = pytest.mark.xdist_group("reliability")

EXCHANGE = "fmn.send"
CANARY_PACKAGE = "canarypkg"
MAX_BODY = 256 * 1024  # the consumer's limit here, so oversized bodies stay cheap to send
SCHEMAS = sorted(e.name for e in entry_points(group="fedora.messages"))
RULE = {
    "id": 1,
    "name": "canary",
    "user": {"name": "alice"},
    "tracking_rule": {
        "name": "artifacts-followed",
        "params": [{"name": CANARY_PACKAGE, "type": "rpms"}],
    },
    "generation_rules": [
        {"destinations": [{"protocol": "email", "address": "alice@example.org"}], "filters": {}}
    ],
}
DIRECTORY = {
    "users": {"alice": {"username": "alice", "emails": ["alice@example.org"], "ircnicks": []}},
    "groups": {},
    "projects": {},
}


# ---- the consumer under test -------------------------------------------------------------------


class Bus:
    """A blocking RabbitMQ client (pika, as fedora-messaging publishers use) and the consumer."""

    def __init__(self, url: str, consumer: FmnProcess) -> None:
        self.consumer = consumer
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()

    def publish(self, topic: str, body: bytes, properties: pika.BasicProperties) -> None:
        self.channel.basic_publish("amq.topic", topic, body, properties)

    def canary_gets_through(self, timeout: float = 30) -> None:
        """A good message published now becomes a work item within `timeout` seconds."""
        message_id = str(uuid.uuid4())
        self.publish(
            "org.fedoraproject.test.canary",
            json.dumps({"canary": message_id}).encode(),
            pika.BasicProperties(
                message_id=message_id,
                headers={f"fedora_messaging_rpm_{CANARY_PACKAGE}": True},
                delivery_mode=2,
            ),
        )
        deadline = time.monotonic() + timeout
        queue = send_queue(EXCHANGE, "email")
        while time.monotonic() < deadline:
            method, _, body = self.channel.basic_get(queue, auto_ack=True)
            if method is None:
                assert self.consumer.alive, self.consumer.tail()
                self.connection.sleep(0.02)
                continue
            if any(json.loads(item)["message"]["id"] == message_id for item in unpack(body)):
                return
        raise AssertionError(f"the good message was not handled\n{self.consumer.tail()}")


async def _rules(url: str) -> None:
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
    from sqlalchemy.pool import NullPool

    from fmn.rules import schema, transfer

    engine = create_async_engine(url, poolclass=NullPool)
    async with AsyncSession(engine) as session, session.begin():
        await transfer.import_rules(session, [schema.Rule.model_validate(RULE)])
    await engine.dispose()


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bus]:
    import asyncio

    workdir = tmp_path_factory.mktemp("bad-input")
    vhost, amqp_url = services.create_vhost()
    db_name = f"{services.pg_database_name()}_bad_input"
    db_url = services.recreate_database(db_name)
    consumer = None
    try:
        migrations.upgrade(db_url)
        asyncio.run(_rules(db_url))
        (workdir / "directory.json").write_text(json.dumps(DIRECTORY))
        config = write_config(
            workdir / "fmn.toml",
            {
                "database": {"url": db_url},
                "bus": {"amqp_url": amqp_url},
                "send_queue": {"amqp_url": amqp_url, "exchange": EXCHANGE},
                "directory": {"local_file": str(workdir / "directory.json")},
                "consumer": {"max_body_bytes": MAX_BODY, "retry_delay": 0.2},
                "api": {"secret_keys": [SIGNING_KEY]},
            },
        )
        consumer = FmnProcess("consumer", ["consumer"], config, workdir / "consumer.log")
        consumer.start()
        bus = _connect(amqp_url, consumer)
        yield bus
        bus.connection.close()
    finally:
        if consumer is not None:
            consumer.stop()
        services.drop_database(db_name)
        services.delete_vhost(vhost)


def _connect(url: str, consumer: FmnProcess) -> Bus:
    deadline = time.monotonic() + 180
    bus = Bus(url, consumer)
    while True:  # ready once the consumer has declared its queue and consumes it
        try:
            check = bus.connection.channel()
            if check.queue_declare("fmn", passive=True).method.consumer_count:
                check.close()
                return bus
        except pika.exceptions.ChannelClosedByBroker:
            pass
        if time.monotonic() > deadline or not consumer.alive:
            raise RuntimeError(f"the consumer did not start\n{consumer.tail()}")
        time.sleep(0.2)


# ---- malformed messages ---------------------------------------------------------------------


def _fits(n: int) -> Any:
    # AMQP short strings (topics, header names, message ids) are at most 255 bytes.
    return lambda s: len(s.encode("utf-8", "surrogatepass")) <= n


odd_text = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]) | st.sampled_from("\x00\n\r.#*"),
    max_size=80,
)
topics = st.one_of(
    st.sampled_from(["", ".", "..", "#", "*", "org.fedoraproject.prod.", "a" * 255]),
    odd_text.filter(_fits(255)),
    st.sampled_from(["fas.user.update", "pagure.project.user.added", "fmn.rule.update.v1"]),
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | odd_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(odd_text, inner, max_size=4),
    max_leaves=20,
)
header_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),  # no floats: pika, like fedora-messaging, cannot send them
    odd_text,
    st.binary(max_size=40),
    st.datetimes(dt.datetime(1970, 1, 2), timezones=st.just(dt.UTC)).map(
        lambda d: d.replace(microsecond=0)
    ),
    st.decimals(places=2, min_value=-1000, max_value=1000, allow_nan=False),
    st.lists(st.integers(0, 10) | odd_text, max_size=3),
    st.dictionaries(
        st.sampled_from(["a", "b"]), st.integers(-(2**31), 2**31) | odd_text, max_size=2
    ),
)
header_names = st.one_of(
    st.sampled_from(
        [
            "fedora_messaging_schema",
            "sent-at",
            "fedora_messaging_severity",
            "priority",
            "fedora_messaging_user_",
            "fedora_messaging_rpm_",
            "fedora_messaging_group_x",
        ]
    ),
    st.builds(
        lambda w, t: f"fedora_messaging_{w}_{t}",
        st.sampled_from(["user", "rpm", "module"]),
        odd_text,
    ),
    odd_text,
).filter(_fits(120))


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["json", "binary", "deep", "huge", "text", "surrogate"]))
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    if kind == "binary":
        return draw(st.binary(max_size=300))
    if kind == "deep":
        depth = draw(st.integers(100, 100_000))
        return b"[" * depth + b"]" * draw(st.sampled_from([0, depth]))
    if kind == "huge":
        return b'{"x": "' + b"a" * draw(st.integers(MAX_BODY - 20, MAX_BODY + 20)) + b'"}'
    if kind == "surrogate":
        return b'{"summary": "\\ud800", "agent": "\\udfff"}'
    return draw(odd_text).encode()


@st.composite
def bad_messages(draw: st.DrawFn) -> tuple[str, bytes, pika.BasicProperties]:
    headers = draw(st.dictionaries(header_names, header_values, max_size=6))
    if draw(st.booleans()):
        # Matched by the canary rule: the bad message goes all the way to a work item.
        headers[f"fedora_messaging_rpm_{CANARY_PACKAGE}"] = True
    if draw(st.booleans()):
        # A real schema, with whatever body: the schema's own code must not take us down.
        headers["fedora_messaging_schema"] = draw(st.sampled_from(SCHEMAS))
        body = json.dumps(draw(json_values)).encode()
    else:
        body = draw(bodies())
    message_id = draw(st.none() | st.just("") | odd_text.filter(_fits(255)))
    properties = pika.BasicProperties(
        message_id=message_id,
        headers=headers,
        content_type=draw(st.sampled_from([None, "application/json", "text/plain", "x/\x00"])),
        content_encoding=draw(st.sampled_from([None, "utf-8", "gzip", "latin-1"])),
        delivery_mode=2,
    )
    return draw(topics), body, properties


@settings(
    # More for a longer hunt: FMN_BAD_INPUT_EXAMPLES=2000 .venv/bin/pytest tests/reliability/...
    max_examples=int(os.environ.get("FMN_BAD_INPUT_EXAMPLES", "60")),
    deadline=None,
    database=None,
    # A failing example costs the canary's whole timeout: shrinking would take many minutes.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(bad_messages(), min_size=1, max_size=5))
@example([("org.fedoraproject.prod.x", b"x" * (MAX_BODY + 1), pika.BasicProperties())])
def test_malformed_messages_do_not_stop_the_consumer(
    bus: Bus, messages: list[tuple[str, bytes, pika.BasicProperties]]
) -> None:
    for topic, body, properties in messages:
        bus.publish(topic, body, properties)
    bus.canary_gets_through()


def test_the_consumer_logged_no_unhandled_error(bus: Bus) -> None:
    # Runs after the property test (same module, in order): nothing escaped the consumer's
    # handling of one message, and it never stopped.
    log = Path(bus.consumer.log).read_text(errors="replace")
    assert "consumer task failed" not in log
    assert bus.consumer.alive
    assert bus.consumer.starts == 1

"""deploy/rabbitmq/definitions.json: the vhosts, users, permissions, quorum queues and policies
of a RabbitMQ for fmn. Checked against what the code declares, then imported into the real
RabbitMQ (under unique names) and used by the real code with each role's own user, so a queue
argument or a permission that does not fit fails here rather than at a deployment's start."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest

from fmn.consumer.service import Consumer
from fmn.core.settings import Settings
from fmn.sendqueue.deadletters import open_broker
from fmn.sendqueue.topology import declare_send_topology, retry_queue, send_queue
from fmn.sendqueue.workitem import PROTOCOLS
from fmn.transport import make_broker
from fmn.transport.base import Broker, Outgoing
from tests.deploy.conftest import DEPLOY
from tests.deploy.recording import RecordingBroker
from tests.harness import services

DEFINITIONS = DEPLOY / "rabbitmq" / "definitions.json"
BUS_VHOST = "/pubsub"
SEND_VHOST = "/fmn"
# The roles the sample file has a user for.
ROLES = ("fmn-consumer", "fmn-api", "fmn-sender", "fmn-admin")


def definitions() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DEFINITIONS.read_text())
    return data


def defined_queues(data: dict[str, Any], vhost: str) -> dict[str, dict[str, Any]]:
    queues = {q["name"]: q for q in data["queues"] if q["vhost"] == vhost}
    found: dict[str, dict[str, Any]] = {}
    for name, queue in queues.items():
        arguments = {k: v for k, v in queue["arguments"].items() if k != "x-queue-type"}
        bindings = sorted(
            (b["source"], b["routing_key"])
            for b in data["bindings"]
            if b["vhost"] == vhost and b["destination"] == name
        )
        found[name] = {"arguments": arguments, "bindings": bindings}
    return found


async def declared_by_the_code() -> tuple[RecordingBroker, RecordingBroker]:
    """What the consumer declares on the bus and on the send vhost at its start (the senders
    declare the same send topology, through the same function)."""
    bus, send = RecordingBroker(), RecordingBroker()
    consumer = Consumer(
        Settings(), directory=mock.Mock(), bus=bus, send=send, sessionmaker=mock.Mock()
    )
    consumer.rebuild = mock.AsyncMock()  # type: ignore[method-assign]
    await consumer.start()
    return bus, send


async def test_queues_are_those_the_code_declares() -> None:
    bus, send = await declared_by_the_code()
    data = definitions()
    assert defined_queues(data, BUS_VHOST) == bus.durable_queues()
    assert defined_queues(data, SEND_VHOST) == send.durable_queues()
    exchanges = {(e["vhost"], e["name"]): e for e in data["exchanges"]}
    for name, kind in send.exchanges.items():
        exchange = exchanges[(SEND_VHOST, name)]
        assert exchange["type"] == kind and exchange["durable"]


def test_queues_are_quorum_queues_and_the_vhosts_default_to_them() -> None:
    data = definitions()
    for queue in data["queues"]:
        assert queue["arguments"]["x-queue-type"] == "quorum", queue["name"]
        assert queue["durable"] and not queue["auto_delete"], queue["name"]
    # The code declares without x-queue-type: the vhost's default makes those declarations
    # equivalent to the quorum queues here (and keeps exclusive control queues classic).
    for vhost in data["vhosts"]:
        assert vhost["metadata"]["default_queue_type"] == "quorum"
        assert vhost["default_queue_type"] == "quorum"


def test_policies_dead_letter_to_defined_queues() -> None:
    data = definitions()
    for policy in data["policies"]:
        names = [q["name"] for q in data["queues"] if q["vhost"] == policy["vhost"]]
        matched = [n for n in names if re.search(policy["pattern"], n)]
        assert matched, f"policy {policy['name']} matches no queue"
        target = policy["definition"].get("dead-letter-routing-key")
        if target is not None:
            assert policy["definition"]["dead-letter-exchange"] == ""
            assert target in names
    # Every send queue has a poison-message limit that dead-letters instead of dropping.
    limited = {
        n
        for p in data["policies"]
        if "dead-letter-routing-key" in p["definition"]
        for n in [q["name"] for q in data["queues"]]
        if re.search(p["pattern"], n)
    }
    settings = Settings()
    for protocol in PROTOCOLS:
        assert send_queue(settings.send_queue.exchange, protocol) in limited


def test_every_user_has_a_role_and_permissions_on_existing_vhosts() -> None:
    data = definitions()
    vhosts = {v["name"] for v in data["vhosts"]}
    assert {u["name"] for u in data["users"]} == set(ROLES)
    for permission in data["permissions"]:
        assert permission["vhost"] in vhosts
        for key in ("configure", "write", "read"):
            re.compile(permission[key])


# ---- the real RabbitMQ ------------------------------------------------------------------


class Imported:
    """The definitions imported under unique vhost and user names."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        data = definitions()
        # The file gives no password (a sample's would be accepted): each test user gets one.
        self.passwords = {u["name"]: secrets.token_hex(16) for u in data["users"]}

    def vhost(self, name: str) -> str:
        return f"{self.prefix}{name.strip('/')}"

    def user(self, role: str) -> str:
        return f"{self.prefix}{role}"

    def url(self, role: str, vhost: str) -> str:
        host = services.AMQP_HOST.split("@", 1)[-1]
        return f"amqp://{self.user(role)}:{self.passwords[role]}@{host}/{self.vhost(vhost)}"

    def renamed(self) -> dict[str, Any]:
        data = definitions()
        for item in [*data["queues"], *data["exchanges"], *data["bindings"], *data["policies"]]:
            item["vhost"] = self.vhost(item["vhost"])
        for vhost in data["vhosts"]:
            vhost["name"] = self.vhost(vhost["name"])
        for user in data["users"]:
            user["password"] = self.passwords[user["name"]]
            del user["password_hash"]
            user["name"] = self.user(user["name"])
        for permission in data["permissions"]:
            permission["vhost"] = self.vhost(permission["vhost"])
            permission["user"] = self.user(permission["user"])
        return data


def _rabbitmqctl(*args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        ["rabbitmqctl", "-q", *args],
        input=stdin,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.stdout


def _wait_for_queues(vhost: str, count: int) -> None:
    """The import is asynchronous: wait until the vhost has its queues."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        listed = _rabbitmqctl("list_queues", "-p", vhost, "name")
        if len(listed.split()) >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"vhost {vhost}: queues not imported")


@pytest.fixture
def imported() -> Iterator[Imported]:
    target = Imported(f"fmn-defs-{uuid.uuid4().hex[:8]}-")
    data = target.renamed()
    try:
        # From standard input: the broker may not be allowed to read the test's files.
        _rabbitmqctl("import_definitions", "--format", "json", stdin=json.dumps(data))
        for vhost in data["vhosts"]:
            count = sum(1 for q in data["queues"] if q["vhost"] == vhost["name"])
            _wait_for_queues(vhost["name"], count)
        yield target
    finally:
        for vhost in (BUS_VHOST, SEND_VHOST):
            subprocess.run(
                ["rabbitmqctl", "-q", "delete_vhost", target.vhost(vhost)],
                capture_output=True,
                timeout=120,
            )
        for role in ROLES:
            subprocess.run(
                ["rabbitmqctl", "-q", "delete_user", target.user(role)],
                capture_output=True,
                timeout=120,
            )


async def _connected(url: str) -> Broker:
    broker = make_broker(url, "fmn deploy test")
    await broker.connect()
    return broker


async def test_the_code_runs_on_the_imported_definitions(imported: Imported) -> None:
    queues = _rabbitmqctl("list_queues", "-p", imported.vhost(SEND_VHOST), "name", "type")
    assert "fmn.send.email\tquorum" in queues

    # The consumer: its queues on the bus, its control queue, the send topology.
    settings = Settings(
        bus={"amqp_url": imported.url("fmn-consumer", BUS_VHOST)},
        send_queue={"amqp_url": imported.url("fmn-consumer", SEND_VHOST)},
    )
    consumer = Consumer(settings, directory=mock.Mock(), sessionmaker=mock.Mock())
    consumer.rebuild = mock.AsyncMock()  # type: ignore[method-assign]
    try:
        await consumer.start()
        await consumer.send.publish(
            "fmn.send", Outgoing("send.email", b"{}", message_id="deploy-test")
        )
    finally:
        await consumer.bus.close()
        await consumer.send.close()

    # A sender: the same topology, consuming, retrying through the default exchange.
    sender = await _connected(imported.url("fmn-sender", SEND_VHOST))
    try:
        await declare_send_topology(sender, "fmn.send", Settings().send_queue.retry_delays)
        delivery = await sender.get(send_queue("fmn.send", "email"))
        assert delivery is not None and delivery.message_id == "deploy-test"
        await sender.publish("", Outgoing(retry_queue("fmn.send", "email", 0), delivery.body))
        await delivery.ack()
    finally:
        await sender.close()

    # The API: dead letters and queue sizes on the send vhost, announcements on the bus.
    api_settings = Settings(send_queue={"amqp_url": imported.url("fmn-api", SEND_VHOST)})
    dead = await open_broker(api_settings.send_queue)
    try:
        assert await dead.queue_size(retry_queue("fmn.send", "email", 0)) == 1
    finally:
        await dead.close()
    bus = await _connected(imported.url("fmn-api", BUS_VHOST))
    try:
        await bus.publish("amq.topic", Outgoing("fmn.rule.create.v1", b"{}"))
        assert await bus.queue_size("fmn") == 1
    finally:
        await bus.close()

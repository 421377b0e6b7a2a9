"""fmn's processes on Fedora's bus (TLS, client certificates, SASL EXTERNAL, the /pubsub vhost:
tests/reliability/tls_node.py), the bus configured only through a fedora-messaging TOML file:
a real `fmn consumer` turns a bus message into a work item on fmn's own vhost of the same node,
a real `fmn sender email` delivers it to the sender tests' SMTP server, and the API's publisher
(its startup code and announcer, in this process) announces a rule change the consumer acts on.
Then the node is stopped and started again mid-queue: the processes carry on, with nothing
lost and nothing sent twice."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.soak_procs import FmnProcess, stop_all, write_config
from fmn.api.services import Overrides, Services, start_services, stop_services
from fmn.core.settings import load_settings
from fmn.db import migrations
from fmn.transport import Broker
from tests.consumer.conftest import publish
from tests.harness import services
from tests.harness.signing import SIGNING_KEY
from tests.harness.smtp_server import SMTPServer
from tests.reliability.tls_node import (
    NEEDS_ROOT,
    USER,
    TLSBus,
    fedora_messaging_toml,
    send_queue_url,
)
from tests.senders.helpers import eventually
from tests.transport.fedora_bus import broker_from

pytestmark = [pytest.mark.xdist_group("reliability"), NEEDS_ROOT]

MAIL_DOMAIN = "tls.test"
PEOPLE = {"alice": "tlspkg-alice", "bob": "tlspkg-bob", "carol": "tlspkg-carol"}
_MESSAGE_ID = re.compile(r"^Message-ID:[ \t]*(<[^>\r\n]*>)", re.M | re.I)


def address(user: str) -> str:
    return f"{user}@example.org"


def rule(rule_id: int, user: str) -> dict[str, object]:
    return {
        "id": rule_id,
        "name": f"{user}'s package",
        "user": {"name": user},
        "tracking_rule": {
            "name": "artifacts-followed",
            "params": [{"name": PEOPLE[user], "type": "rpms"}],
        },
        "generation_rules": [
            {"destinations": [{"protocol": "email", "address": address(user)}], "filters": {}}
        ],
    }


def mail_id(bus_message_id: str, user: str) -> str:
    """The Message-ID the email sender gives the notification of a bus message (derived from
    its idempotency key, as bench/soak_world.py has it)."""
    key = f"{bus_message_id}/email/{address(user)}"
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:40]}@{MAIL_DOMAIN}>"


async def add_rule(db_url: str, rule_id: int, user: str) -> None:
    """What the API commits before it announces the change."""
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
    from sqlalchemy.pool import NullPool

    from fmn.rules import schema, transfer

    engine = create_async_engine(db_url, poolclass=NullPool)
    async with AsyncSession(engine) as session, session.begin():
        await transfer.import_rules(session, [schema.Rule.model_validate(rule(rule_id, user))])
    await engine.dispose()


@dataclass
class Fmn:
    config: Path
    bus_config: Path
    db_url: str
    smtp: SMTPServer
    consumer: FmnProcess
    sender: FmnProcess

    def mails(self) -> Counter[str]:
        """How many times each Message-ID reached the SMTP server."""
        found = (_MESSAGE_ID.search(r.data.decode(errors="replace")) for r in self.smtp.received)
        return Counter(m.group(1) for m in found if m)

    def rule_changes_seen(self) -> int:
        """Rule changes the consumer applied on their announcement."""
        return self.consumer.tail(10**7).count("index updated after fmn.rule.")

    def index_built_with(self, rules: int) -> bool:
        """Whether the consumer rebuilt its index from the database with that many rules."""
        return f"rule index built: {{'rules': {rules}," in self.consumer.tail(10**7)

    def alive(self) -> None:
        for process in (self.consumer, self.sender):
            assert process.alive and process.starts == 1, process.tail()

    async def bus_message(self, bus: Broker, user: str) -> str:
        """A message about the user's package, published as fedora-messaging publishers do."""
        message_id = str(uuid.uuid4())
        await publish(
            bus,
            {
                "id": message_id,
                "topic": "org.fedoraproject.test.tls",
                "body": {"package": PEOPLE[user], "id": message_id},
                "headers": {f"fedora_messaging_rpm_{PEOPLE[user]}": True},
            },
        )
        return message_id

    async def delivered(self, wanted: dict[str, str], timeout: float = 120) -> None:
        """Until every wanted mail ({Message-ID: what}) has arrived."""

        async def arrived() -> bool:
            self.alive()
            return all(self.mails()[m] for m in wanted)

        try:
            await eventually(arrived, timeout=timeout, interval=0.2)
        except AssertionError:
            missing = [w for m, w in wanted.items() if not self.mails()[m]]
            raise AssertionError(
                f"not delivered: {missing}\nconsumer:\n{self.consumer.tail()}\n"
                f"sender:\n{self.sender.tail()}"
            ) from None


@pytest.fixture(scope="module")
def fmn(tls_bus: TLSBus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fmn]:
    node, ca, pki = tls_bus
    workdir = tmp_path_factory.mktemp("fedora-tls")
    cert, key = ca.issue(USER)
    bus_config = fedora_messaging_toml(pki / "fmn-bus.toml", node, ca.cert_file, cert, key)
    db_name = f"{services.pg_database_name()}_fedora_tls"
    db_url = services.recreate_database(db_name)
    migrations.upgrade(db_url)
    asyncio.run(add_rule(db_url, 1, "alice"))
    users = {u: {"username": u, "emails": [address(u)], "ircnicks": []} for u in PEOPLE}
    (workdir / "directory.json").write_text(
        json.dumps({"users": users, "groups": {}, "projects": {}})
    )
    smtp = SMTPServer()
    smtp.start()
    config = write_config(
        workdir / "fmn.toml",
        {
            "public_url": "https://notifications.example.org",
            "database": {"url": db_url},
            "cache": {"url": services.redis_url()},
            # The bus from the fedora-messaging file alone: no amqp_url here.
            "bus": {"fedora_messaging_config": str(bus_config)},
            "send_queue": {
                "amqp_url": send_queue_url(node, ca.cert_file, cert, key),
                "retry_delays": [1.0, 2.0, 5.0],
            },
            "directory": {"local_file": str(workdir / "directory.json")},
            "consumer": {"retry_delay": 0.2},
            "api": {"secret_keys": [SIGNING_KEY]},
            "senders": {"digest_threshold": 1000, "log_flush_interval": 0.2},
            "senders.email": {
                "smtp_host": "127.0.0.1",
                "smtp_port": smtp.port,
                "connections": 1,
                "from_address": f"Fedora Notifications <notifications@{MAIL_DOMAIN}>",
            },
        },
    )
    consumer = FmnProcess("consumer", ["consumer"], config, workdir / "consumer.log")
    sender = FmnProcess("sender", ["sender", "email"], config, workdir / "sender.log")
    try:
        consumer.start()
        sender.start()
        yield Fmn(config, bus_config, db_url, smtp, consumer, sender)
    finally:
        stop_all([consumer, sender])
        smtp.stop()
        services.drop_database(db_name)


@pytest.fixture
async def bus(fmn: Fmn) -> AsyncIterator[Broker]:
    """A publisher on Fedora's bus, with the same fedora-messaging file."""
    async with broker_from(fmn.bus_config) as broker:
        yield broker


@pytest.fixture
async def api(fmn: Fmn, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Services]:
    """The API's services as `fmn api` starts them, from the same configuration file."""
    monkeypatch.setenv("FMN_CONFIG", str(fmn.config))
    running = await start_services(load_settings(), Overrides())
    yield running
    await stop_services(running)


async def test_a_bus_message_becomes_a_mail(fmn: Fmn, bus: Broker) -> None:
    """Before the consumer has declared its queue, a message has nowhere to go: publish until
    one is routed, then it is delivered."""

    async def routed() -> str | None:
        try:
            return await fmn.bus_message(bus, "alice")
        except Exception:  # unroutable (mandatory publish) until the consumer is up
            await asyncio.sleep(0.5)
            return None

    message_id = None
    async with asyncio.timeout(120):
        while message_id is None:
            fmn.alive()
            message_id = await routed()
    await fmn.delivered({mail_id(message_id, "alice"): "alice's first"})
    [received] = [r for r in fmn.smtp.received if mail_id(message_id, "alice").encode() in r.data]
    assert received.rcpt_tos == [address("alice")]


async def test_a_rule_the_api_announces_is_applied_by_the_consumer(
    fmn: Fmn, bus: Broker, api: Services
) -> None:
    seen = fmn.rule_changes_seen()
    await add_rule(fmn.db_url, 2, "bob")
    api.announcer.announce("create", 2, "bob's package", "bob")
    await api.announcer.drain()
    assert api.announcer.failed == 0
    await eventually(lambda: fmn.rule_changes_seen() > seen, timeout=60)
    message_id = await fmn.bus_message(bus, "bob")
    await fmn.delivered({mail_id(message_id, "bob"): "bob's, by the announced rule"})


async def test_the_node_restarted_mid_queue(
    tls_bus: TLSBus, fmn: Fmn, api: Services, smtp_delay: None
) -> None:
    """Messages on the bus and work items on their way when the node stops cleanly; after it
    is back, the consumer and the sender carry on by themselves, the API's publisher too, and
    every notification arrives once."""
    node = tls_bus[0]
    before = [*fmn.mails()]
    # The API's publisher connected before the stop (it connects on its first announcement).
    seen = fmn.rule_changes_seen()
    api.announcer.announce("update", 1, "alice's package", "alice")
    await api.announcer.drain()
    await eventually(lambda: fmn.rule_changes_seen() > seen, timeout=60)
    async with broker_from(fmn.bus_config) as bus:
        first = [await fmn.bus_message(bus, "alice") for _ in range(20)]
    wanted = {mail_id(m, "alice"): f"before the restart, #{n}" for n, m in enumerate(first)}
    await eventually(lambda: len(fmn.mails()) > len(before) + 2, timeout=60)
    in_flight = len(wanted) - sum(1 for m in wanted if fmn.mails()[m])
    await asyncio.to_thread(node.stop)
    await asyncio.to_thread(node.start)
    seen = fmn.rule_changes_seen()
    await add_rule(fmn.db_url, 3, "carol")
    api.announcer.announce("create", 3, "carol's package", "carol")  # its connection was lost
    async with broker_from(fmn.bus_config) as bus:
        after = [await fmn.bus_message(bus, "alice") for _ in range(5)]
        await api.announcer.drain()
        # Applied on its announcement, or (announced before the consumer's control queue was
        # back) by the rebuild that follows the reconnection: finding 14 in reliability.md.
        await eventually(
            lambda: fmn.rule_changes_seen() > seen or fmn.index_built_with(3), timeout=120
        )
        carol = await fmn.bus_message(bus, "carol")
    wanted |= {mail_id(m, "alice"): f"after the restart, #{n}" for n, m in enumerate(after)}
    wanted[mail_id(carol, "carol")] = "carol's, announced after the restart"
    await fmn.delivered(wanted, timeout=180)
    await asyncio.sleep(2)  # a second copy would be here by now
    assert in_flight > 0  # the node stopped mid-queue
    assert api.announcer.failed == 0
    assert {m: n for m, n in fmn.mails().items() if n > 1} == {}
    fmn.alive()


@pytest.fixture
def smtp_delay(fmn: Fmn) -> Iterator[None]:
    """A slow SMTP server, so that work items are still waiting when the node stops."""
    fmn.smtp.sink.delay = 0.3
    yield
    fmn.smtp.sink.delay = 0.0

"""The IRC sender against a real IRC network (InspIRCd + Atheme): TLS, SASL, line splitting,
control characters, the flood limit, digests, refused nicks and reconnection."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from fmn.core.settings import Settings
from fmn.notify import one_line
from fmn.senders.irc import split_utf8
from fmn.senders.service import run_sender
from fmn.sendqueue.topology import dead_letter_queue
from fmn.transport import Broker
from tests.harness.irc_server import IRCClient, IRCNetwork
from tests.senders.conftest import running, sender_settings
from tests.senders.helpers import eventually, make_item, publish, queue_has

pytestmark = [
    # One network per module and worker: keep these tests together.
    pytest.mark.xdist_group("irc"),
]

BOT, PASSWORD = "fmnbot", "bot-secret"
_nicks = itertools.count(1)


async def _network(directory: Path) -> IRCNetwork:
    network = IRCNetwork(directory)
    network.start()
    try:
        await network.register(BOT, PASSWORD)
    except BaseException:
        network.stop()
        raise
    return network


@pytest.fixture(scope="module")
def irc_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IRCNetwork]:
    network = asyncio.run(_network(tmp_path_factory.mktemp("irc")))
    yield network
    network.stop()


@pytest.fixture
async def reader(irc_network: IRCNetwork) -> AsyncIterator[IRCClient]:
    client = await irc_network.reader(f"reader{next(_nicks)}")
    yield client
    await client.close()


def irc_settings(
    amqp_url: str, redis_url: str, pg_url: str, exchange: str, network: IRCNetwork, **irc: Any
) -> Settings:
    extra = {k: irc.pop(k) for k in ("digest_threshold",) if k in irc}
    return sender_settings(
        amqp_url,
        redis_url,
        pg_url,
        exchange,
        irc={
            "host": "127.0.0.1",
            "port": network.tls_port,
            "tls": True,
            "ca_file": str(network.cert),
            "nickname": BOT,
            "sasl_username": BOT,
            "sasl_password": PASSWORD,
            "line_interval": 0.01,
            "burst": 100,
            "reconnect_min": 0.2,
            "reconnect_max": 1.0,
            **irc,
        },
        **extra,
    )


@pytest.fixture
def settings(
    amqp_url: str,
    redis_url: str,
    pg_url: str,
    exchange: str,
    irc_network: IRCNetwork,
    redis_client: aioredis.Redis,
) -> Settings:
    return irc_settings(amqp_url, redis_url, pg_url, exchange, irc_network)


async def test_delivery_over_tls_with_sasl(
    settings: Settings, broker: Broker, exchange: str, reader: IRCClient
) -> None:
    item = make_item("irc", reader.nick)
    async with running("irc", settings):
        await publish(broker, exchange, item)
        await eventually(lambda: reader.privmsgs)
        # The bot is logged in to its account: SASL worked.
        reader.send(f"WHOIS {BOT}")
        await eventually(lambda: [x for x in reader.lines if b" 330 " in x])
    [(sender, text)] = reader.privmsgs
    assert sender == BOT
    assert text.decode() == item.chat.text  # type: ignore[union-attr]


async def test_long_lines_are_split_and_controls_removed(
    settings: Settings, broker: Broker, exchange: str, reader: IRCClient
) -> None:
    evil = "start\r\nPRIVMSG #ops :pwned\r\nQUIT :bye\x00\x01ACTION x\x01 \x02bold\x03 "
    long_text = evil + "é€😀 word " * 120  # about 1500 UTF-8 bytes
    item = make_item("irc", reader.nick, text=long_text)
    async with running("irc", settings):
        await publish(broker, exchange, item)
        expected = split_utf8(one_line(long_text), 512)  # at least this many lines
        await eventually(lambda: len(reader.privmsgs) >= len(expected))
        await asyncio.sleep(0.3)
    texts = [t for _, t in reader.privmsgs]
    assert len(texts) >= 3
    assert all(len(t) < 512 for t in texts)
    joined = " ".join(t.decode("utf-8") for t in texts)  # every piece is valid UTF-8
    assert joined.split() == one_line(long_text).split()
    assert joined.startswith("start PRIVMSG #ops :pwned QUIT :byeACTION x bold")
    # Nothing became a command: only PRIVMSGs to the reader arrived, and the bot is still on.
    assert all(sender == BOT for sender, _ in reader.privmsgs)
    commands = {line.split(b" ")[1] for line in reader.lines if line.startswith(b":")}
    assert b"QUIT" not in commands


async def test_bidi_controls_reach_no_irc_line(
    settings: Settings, broker: Broker, exchange: str, reader: IRCClient
) -> None:
    item = make_item("irc", reader.nick, text="[koji] build\u202e of\u2066 foo\u200f done")
    async with running("irc", settings):
        await publish(broker, exchange, item)
        await eventually(lambda: reader.privmsgs)
    [(_, text)] = reader.privmsgs
    assert text.decode() == "[koji] build of foo done"


async def test_flood_limit_is_held(
    amqp_url: str,
    redis_url: str,
    pg_url: str,
    exchange: str,
    irc_network: IRCNetwork,
    broker: Broker,
    reader: IRCClient,
    redis_client: aioredis.Redis,
) -> None:
    settings = irc_settings(
        amqp_url, redis_url, pg_url, exchange, irc_network, line_interval=0.25, burst=3
    )
    items = [make_item("irc", reader.nick) for _ in range(7)]
    async with running("irc", settings):
        await asyncio.sleep(0.5)  # connected, bucket full
        await publish(broker, exchange, *items)
        await eventually(lambda: len(reader.privmsgs) == 7)
    # The server's own clock: a burst of three, then no faster than one line per 0.25 s. Delays
    # elsewhere can only make lines later, so each line's earliest time is a firm bound.
    times = reader.privmsg_times
    for k in range(3, 7):
        assert times[k] - times[0] >= (k - 2) * 0.25 - 0.01, times


async def test_a_burst_collapses_into_one_digest(
    amqp_url: str,
    redis_url: str,
    pg_url: str,
    exchange: str,
    irc_network: IRCNetwork,
    broker: Broker,
    reader: IRCClient,
    redis_client: aioredis.Redis,
) -> None:
    settings = irc_settings(
        amqp_url,
        redis_url,
        pg_url,
        exchange,
        irc_network,
        line_interval=0.3,
        burst=1,
        digest_threshold=3,
    )
    items = [make_item("irc", reader.nick) for _ in range(15)]
    async with running("irc", settings):
        await publish(broker, exchange, *items)
        await eventually(lambda: [t for _, t in reader.privmsgs if b"notifications (" in t])
        await asyncio.sleep(0.8)
    texts = [t.decode() for _, t in reader.privmsgs]
    # The first ones one by one (at least the threshold's three; one more if the first was
    # already sent when the fourth came in), then one line for all the others.
    [digest] = [t for t in texts if "notifications (" in t]
    singles = [t for t in texts if t is not digest]
    assert singles == [i.chat.text for i in items[: len(singles)]]  # type: ignore[union-attr]
    assert 3 <= len(singles) <= 4, texts
    rest = 15 - len(singles)
    assert digest.startswith(f"{rest} notifications (koji {rest}; more notifications arrived")


async def test_refused_nick_is_dead_lettered_and_sending_goes_on(
    settings: Settings, broker: Broker, exchange: str, reader: IRCClient
) -> None:
    gone = make_item("irc", "nobody-here")
    bad = make_item("irc", "#channel")
    good = make_item("irc", reader.nick)
    async with running("irc", settings):
        await publish(broker, exchange, gone, bad, good)
        await eventually(lambda: reader.privmsgs)
        await eventually(lambda: queue_has(broker, dead_letter_queue(exchange, "irc"), 2))
    assert len(reader.privmsgs) == 1


async def test_reconnects_without_losing_items(
    amqp_url: str,
    redis_url: str,
    pg_url: str,
    exchange: str,
    broker: Broker,
    tmp_path: Path,
    redis_client: aioredis.Redis,
) -> None:
    """The IRC server goes away with items queued; they are delivered once it is back."""
    network = await _network(tmp_path)
    try:
        settings = irc_settings(amqp_url, redis_url, pg_url, exchange, network)
        first = await network.reader("carol")
        async with running("irc", settings):
            await publish(broker, exchange, make_item("irc", "carol"))
            await eventually(lambda: first.privmsgs)
            await first.close()
            network.stop()
            later = [make_item("irc", "carol") for _ in range(3)]
            await publish(broker, exchange, *later)
            await asyncio.sleep(0.5)
            network.start()
            second = await _reader_when_up(network, "carol")
            await eventually(lambda: len(second.privmsgs) == 3, timeout=30)
            await second.close()
        texts = [t.decode() for _, t in second.privmsgs]
        assert texts == [i.chat.text for i in later]  # type: ignore[union-attr]
    finally:
        network.stop()


async def _reader_when_up(network: IRCNetwork, nick: str) -> IRCClient:
    deadline = time.monotonic() + 20
    while True:
        try:
            return await network.reader(nick)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def test_a_second_sender_stands_by_until_the_first_stops(
    amqp_url: str,
    redis_url: str,
    pg_url: str,
    exchange: str,
    irc_network: IRCNetwork,
    broker: Broker,
    reader: IRCClient,
    redis_client: aioredis.Redis,
) -> None:
    settings = irc_settings(amqp_url, redis_url, pg_url, exchange, irc_network)
    settings.senders.instance_lease = 0.6
    first, second = make_item("irc", reader.nick), make_item("irc", reader.nick)
    stop_a, stop_b = asyncio.Event(), asyncio.Event()
    a = asyncio.create_task(run_sender("irc", settings, stop_a))
    await publish(broker, exchange, first)
    await eventually(lambda: reader.privmsgs)
    b = asyncio.create_task(run_sender("irc", settings, stop_b))
    await asyncio.sleep(0.5)
    # Had the second connected, its nick would be "fmnbot_".
    reader.send(f"WHOIS {BOT}_")
    await eventually(lambda: [x for x in reader.lines if b" 401 " in x])
    stop_a.set()
    await asyncio.wait_for(a, 30)
    await publish(broker, exchange, second)  # the second one takes over
    await eventually(lambda: len(reader.privmsgs) == 2, timeout=20)
    stop_b.set()
    await asyncio.wait_for(b, 30)
    assert [t.decode() for _, t in reader.privmsgs] == [
        i.chat.text  # type: ignore[union-attr]
        for i in (first, second)
    ]

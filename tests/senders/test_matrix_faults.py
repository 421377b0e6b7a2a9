"""The Matrix sender under faults, on a real homeserver (Synapse): a refused or expired access
token, the bot removed from a direct room, the recipient leaving it, the homeserver stopped and
started again mid-queue, the sender killed -9 mid-queue, and a burst to one user folded into a
digest. Nothing is lost, nothing arrives twice, and what cannot be delivered is dead-lettered
with its reason."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import nio
import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from fmn.senders.digest import Digest
from fmn.senders.matrix import MatrixHandler
from fmn.senders.state import RedisSenderState
from fmn.sendqueue.deadletters import list_dead_letters
from fmn.sendqueue.topology import dead_letter_queue, declare_send_topology
from fmn.sendqueue.workitem import WorkItem
from fmn.transport import Broker
from tests.harness.matrix_server import Account, MatrixReader, Synapse
from tests.senders.conftest import MatrixSettings, running
from tests.senders.helpers import eventually, make_item, publish, queue_has
from tests.senders.test_restart import write_config

pytestmark = pytest.mark.xdist_group("matrix")
_bots = itertools.count(1)
FMN = str(Path(sys.executable).parent / "fmn")
# Longer than a homeserver restart (Synapse takes 5-20 s to start here).
SLOW_RETRIES = [1.0, 2.0, 4.0, 8.0, 15.0, 30.0]


def token_refused_gauge() -> float | None:
    return REGISTRY.get_sample_value("fmn_sender_matrix_token_refused")


def refused_requests(synapse: Synapse) -> list[str]:
    return synapse.requests(' 401 "')


def texts(messages: list[tuple[str, dict[str, str]]]) -> list[str]:
    return [content["body"] for _, content in messages]


def arrivals(items: list[WorkItem], messages: list[tuple[str, dict[str, str]]]) -> Counter[str]:
    """How many times each item's summary arrived, alone or in a digest's list."""
    bodies = texts(messages)
    return Counter(
        {i.key: sum(body.count(f"{i.message.summary}") for body in bodies) for i in items}
    )


async def test_a_revoked_token_dead_letters_with_the_reason_and_raises_the_alert(
    matrix_settings_for: MatrixSettings,
    exchange: str,
    synapse: Synapse,
    broker: Broker,
    person: MatrixReader,
) -> None:
    account = synapse.register(f"revoked-bot{next(_bots)}")
    settings = matrix_settings_for(account=account)
    first, *rest = [make_item("matrix", person.client.user_id) for _ in range(6)]
    before = len(refused_requests(synapse))
    async with running("matrix", settings) as task:
        await publish(broker, exchange, first)
        await person.wait_for(1)
        assert token_refused_gauge() == 0
        synapse.logout(account.access_token)  # the token is revoked while the sender runs
        await publish(broker, exchange, *rest)
        dlq = dead_letter_queue(exchange, "matrix")
        await eventually(lambda: queue_has(broker, dlq, len(rest)))
        assert token_refused_gauge() == 1
        assert not task.done()  # the sender goes on
    letters = await list_dead_letters(broker, exchange, "matrix")
    assert sorted(letter.item.key for letter in letters if letter.item) == sorted(
        i.key for i in rest
    )
    for letter in letters:
        assert letter.reason.startswith(
            "Matrix access token refused by the homeserver (M_UNKNOWN_TOKEN"
        ), letter.reason
        assert letter.attempts == 1  # not through the retry queues
    # No loop: the homeserver was asked once, not once per notification.
    assert len(refused_requests(synapse)) - before == 1
    assert len(person.messages) == 1


async def test_an_expired_token_at_start_does_not_stop_the_sender(
    matrix_settings_for: MatrixSettings,
    exchange: str,
    synapse: Synapse,
    bot: Account,
    broker: Broker,
    person: MatrixReader,
) -> None:
    account = synapse.register(f"expired-bot{next(_bots)}")
    token = synapse.login_as(bot, account.user_id, valid_for=0.5)
    await asyncio.sleep(1.0)
    settings = matrix_settings_for(account=Account(account.user_id, token))
    items = [make_item("matrix", person.client.user_id) for _ in range(4)]
    before = len(refused_requests(synapse))
    async with running("matrix", settings) as task:
        await publish(broker, exchange, *items)
        dlq = dead_letter_queue(exchange, "matrix")
        await eventually(lambda: queue_has(broker, dlq, len(items)))
        assert token_refused_gauge() == 1
        assert not task.done()
    letters = await list_dead_letters(broker, exchange, "matrix")
    assert len(letters) == len(items)
    for letter in letters:
        assert "M_UNKNOWN_TOKEN" in letter.reason and "expired" in letter.reason.lower()
        assert "replace senders.matrix.access_token" in letter.reason
    # The check at start, and nothing more until `token_recheck` has passed.
    assert len(refused_requests(synapse)) - before == 1
    assert person.messages == []


async def test_the_bot_out_of_the_room_makes_a_new_one(
    matrix_settings_for: MatrixSettings,
    exchange: str,
    synapse: Synapse,
    bot: Account,
    broker: Broker,
    person: MatrixReader,
    redis_client: aioredis.Redis,
) -> None:
    user_id = person.client.user_id
    settings = matrix_settings_for()
    items = [make_item("matrix", user_id) for _ in range(3)]
    async with running("matrix", settings):
        await publish(broker, exchange, items[0])
        [(room_id, _)] = await person.wait_for(1)
        # The bot's account leaves the room from another session (an operator tidying up;
        # the recipient cannot kick it: the direct room gives both the same power level).
        operator = await synapse.reader(bot)
        left = await operator.client.room_leave(room_id)
        await operator.close()
        assert not hasattr(left, "status_code"), left
        await publish(broker, exchange, *items[1:])
        messages = await person.wait_for(3)
    new_room = messages[1][0]
    assert new_room != room_id and messages[2][0] == new_room
    assert arrivals(items, messages) == Counter({i.key: 1 for i in items})
    assert person.invites == [room_id, new_room]
    assert await redis_client.get(f"fmn:senders:matrix:room:{user_id}") == new_room.encode()
    assert await broker.queue_size(dead_letter_queue(exchange, "matrix")) == 0


async def direct_rooms(synapse: Synapse, bot: Account) -> dict[str, list[str]]:
    """The bot's m.direct account data, as a Matrix client of the bot's would show it."""
    reader = await synapse.reader(bot)
    try:
        response = await reader.client.send(
            "GET",
            f"/_matrix/client/v3/user/{bot.user_id}/account_data/m.direct",
            headers={"Authorization": f"Bearer {bot.access_token}"},
        )
        return dict(await response.json()) if response.status == 200 else {}
    finally:
        await reader.close()


async def test_the_room_forgotten_by_redis_is_found_again(
    matrix_settings_for: MatrixSettings,
    exchange: str,
    synapse: Synapse,
    bot: Account,
    broker: Broker,
    person: MatrixReader,
    redis_client: aioredis.Redis,
) -> None:
    """Redis loses the room (a FLUSHDB, a Redis crash within its last second of AOF): the next
    notification goes to the same room, found in the bot's m.direct, not to a new one."""
    user_id = person.client.user_id
    settings = matrix_settings_for()
    items = [make_item("matrix", user_id) for _ in range(3)]
    async with running("matrix", settings):
        await publish(broker, exchange, items[0])
        [(room_id, _)] = await person.wait_for(1)
        assert (await direct_rooms(synapse, bot)).get(user_id) == [room_id]
        await redis_client.delete(f"fmn:senders:matrix:room:{user_id}")
        await publish(broker, exchange, *items[1:])
        messages = await person.wait_for(3)
    assert {room for room, _ in messages} == {room_id}
    assert arrivals(items, messages) == Counter({i.key: 1 for i in items})
    assert person.invites == [room_id]
    assert await redis_client.get(f"fmn:senders:matrix:room:{user_id}") == room_id.encode()


async def test_a_room_made_by_a_create_room_without_answer_is_taken(
    matrix_settings_for: MatrixSettings,
    exchange: str,
    synapse: Synapse,
    bot: Account,
    broker: Broker,
    person: MatrixReader,
    redis_client: aioredis.Redis,
) -> None:
    """What a `createRoom` leaves when its answer never came (it timed out, or the sender was
    killed) while the homeserver made the room: the room, listed nowhere, and the sender's
    mark. The next notification goes to that room rather than to a second one."""
    user_id = person.client.user_id
    # The bot's team room with the recipient in it, which must not be taken for a direct room.
    as_bot = await synapse.reader(bot)
    try:
        team = await as_bot.client.room_create(
            invite=[user_id, synapse.register(f"teammate{next(_bots)}").user_id]
        )
        orphan = await as_bot.client.room_create(
            is_direct=True,
            preset=nio.RoomPreset.trusted_private_chat,
            invite=[user_id],
            name="Fedora Notifications",
        )
    finally:
        await as_bot.close()
    assert isinstance(orphan, nio.RoomCreateResponse) and isinstance(team, nio.RoomCreateResponse)
    await redis_client.set(f"fmn:senders:matrix:creating:{user_id}", "1")
    settings = matrix_settings_for()
    items = [make_item("matrix", user_id) for _ in range(2)]
    async with running("matrix", settings):
        await publish(broker, exchange, *items)
        messages = await person.wait_for(2)
    assert {room for room, _ in messages} == {orphan.room_id}
    assert arrivals(items, messages) == Counter({i.key: 1 for i in items})
    assert orphan.room_id in (await direct_rooms(synapse, bot))[user_id]
    assert not await redis_client.exists(f"fmn:senders:matrix:creating:{user_id}")


async def test_two_sends_to_a_new_recipient_at_once_make_one_room(
    matrix_settings_for: MatrixSettings,
    person: MatrixReader,
    redis_client: aioredis.Redis,
) -> None:
    """A notification and a digest (the sender loop's worker and its digest flusher) for a
    recipient who has no room yet: one room is made, and both go there."""
    user_id = person.client.user_id
    settings = matrix_settings_for()
    handler = MatrixHandler(settings.senders.matrix, RedisSenderState(redis_client, 60))
    await handler.setup()
    first, *held = [make_item("matrix", user_id) for _ in range(3)]
    try:
        digest = Digest("matrix", user_id, "alice", held, frozenset({"muted"}))
        await asyncio.gather(handler.send(first), handler.send_digest(digest))
        messages = await person.wait_for(2)
    finally:
        await handler.stop()
    assert len({room for room, _ in messages}) == 1
    assert len(person.invites) == 1
    assert arrivals([first, *held], messages) == Counter({i.key: 1 for i in [first, *held]})


async def test_what_was_sent_while_the_recipient_was_away_is_there_when_invited_back(
    matrix_settings_for: MatrixSettings,
    exchange: str,
    broker: Broker,
    person: MatrixReader,
    redis_client: aioredis.Redis,
) -> None:
    """The recipient leaves; the next notification goes to the room before the membership is
    checked again (senders.matrix.membership_ttl); the one after that invites them back, and
    both are there when they join (a direct room's history is shared with its members)."""
    ttl = 3.0
    user_id = person.client.user_id
    settings = matrix_settings_for(membership_ttl=ttl)
    first, away, back = [make_item("matrix", user_id) for _ in range(3)]
    async with running("matrix", settings):
        await publish(broker, exchange, first)
        [(room_id, _)] = await person.wait_for(1)
        await person.client.room_leave(room_id)
        await publish(broker, exchange, away)
        await eventually(lambda: redis_client.exists(f"fmn:senders:sent:{away.key}"))
        await asyncio.sleep(ttl)
        await publish(broker, exchange, back)
        messages = await person.wait_for(3)
    assert arrivals([first, away, back], messages) == Counter(
        {first.key: 1, away.key: 1, back.key: 1}
    )
    assert {room for room, _ in messages} == {room_id}
    assert person.invites == [room_id, room_id]


async def test_homeserver_stopped_and_started_again_mid_queue(
    matrix_settings_for: MatrixSettings,
    exchange: str,
    synapse: Synapse,
    broker: Broker,
    person: MatrixReader,
    redis_client: aioredis.Redis,
) -> None:
    slow = f"{exchange}.slow"
    await declare_send_topology(broker, slow, SLOW_RETRIES)
    settings = matrix_settings_for(
        exchange=slow,
        retry_delays=SLOW_RETRIES,
        senders={"digest_threshold": 1000},  # each one alone, to count them
        messages_per_second=5,
        burst=1,
    )
    items = [make_item("matrix", person.client.user_id) for _ in range(30)]
    async with running("matrix", settings):
        await publish(broker, slow, *items)
        await person.wait_for(5, timeout=30)
        await asyncio.to_thread(synapse.stop)
        await asyncio.sleep(2)  # sends fail meanwhile, and go to the retry queues
        await asyncio.to_thread(synapse.start, 300)
        try:
            messages = await person.wait_for(len(items), timeout=120)
        except AssertionError as exc:
            letters = await list_dead_letters(broker, slow, "matrix")
            sent = await redis_client.keys("fmn:senders:sent:*")
            raise AssertionError(
                f"{exc}; {len(sent)} marked sent; dead letters: {[x.reason for x in letters]}"
            ) from None
        await asyncio.sleep(2)  # a second copy would show up by now
        await person.poll()
    assert arrivals(items, person.messages) == Counter({i.key: 1 for i in items}), texts(messages)
    assert await broker.queue_size(dead_letter_queue(slow, "matrix")) == 0


def start_matrix_sender(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "FMN_CONFIG": str(config)}
    with log.open("ab") as out:
        return subprocess.Popen([FMN, "sender", "matrix"], env=env, stdout=out, stderr=out)


async def test_sender_killed_mid_queue_then_restarted(
    amqp_url: str,
    redis_url: str,
    pg_url: str,
    exchange: str,
    synapse: Synapse,
    bot: Account,
    broker: Broker,
    person: MatrixReader,
    tmp_path: Path,
    redis_client: aioredis.Redis,
) -> None:
    matrix = {
        "homeserver": synapse.url,
        "user_id": bot.user_id,
        "access_token": bot.access_token,
        "messages_per_second": 10,
        "burst": 1,
    }
    config = write_config(
        tmp_path / "fmn.toml",
        amqp_url,
        redis_url,
        pg_url,
        exchange,
        25,
        senders="instance_lease = 3\ndigest_threshold = 1000\n",  # each one alone
        tail="[senders.matrix]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in matrix.items()),
    )
    log = tmp_path / "sender.log"
    items = [make_item("matrix", person.client.user_id) for _ in range(40)]
    await publish(broker, exchange, *items, per_message=5)
    process = start_matrix_sender(config, log)
    try:
        await person.wait_for(12, timeout=180)
        process.send_signal(signal.SIGKILL)
        process.wait()
        await person.poll()
        assert len(person.messages) < len(items)  # killed mid-queue
        process = start_matrix_sender(config, log)  # stands by until the lease runs out

        async def all_arrived() -> bool:
            await person.poll()
            return min(arrivals(items, person.messages).values()) >= 1

        try:
            await eventually(all_arrived, timeout=180, interval=0.2)
        except AssertionError:
            raise AssertionError(log.read_text()[-3000:]) from None
        await asyncio.sleep(1.5)  # a second copy would show up by now
        await person.poll()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                # Once seen at load 25 (a clean-clone CI run): the sender lived on for half an
                # hour. Say where each of its tasks waits, then do not leave it running.
                process.send_signal(signal.SIGUSR1)
                await asyncio.sleep(2)
                process.kill()
                process.wait()
                raise AssertionError(
                    f"no stop within 30 s of SIGTERM:\n{log.read_text()[-6000:]}"
                ) from None
    assert process.returncode == 0
    # Each once, in one room: the restarted sender finds the room (Redis, else m.direct), and
    # a notification sent but not marked when the first was killed goes again with the same
    # transaction id, which the homeserver drops (finding 13, reliability.md).
    tail = log.read_text()[-3000:]
    assert len({room for room, _ in person.messages}) == 1, tail
    assert arrivals(items, person.messages) == Counter({i.key: 1 for i in items}), tail


async def test_a_burst_to_one_user_folds_into_a_digest(
    matrix_settings_for: MatrixSettings,
    exchange: str,
    broker: Broker,
    person: MatrixReader,
) -> None:
    settings = matrix_settings_for(
        senders={"digest_threshold": 3},
        messages_per_second=2,  # a slow homeserver: the backlog builds up
        burst=1,
    )
    flood = [make_item("matrix", person.client.user_id) for _ in range(12)]
    async with running("matrix", settings):
        await publish(broker, exchange, *flood)

        async def digest_arrived() -> bool:
            await person.poll()
            return any("notifications (" in body for body in texts(person.messages))

        await eventually(digest_arrived, timeout=60, interval=0.2)
        await asyncio.sleep(1)
        await person.poll()
    bodies = texts(person.messages)
    [digest] = [b for b in bodies if "notifications (" in b]
    singles = [b for b in bodies if b is not digest]
    # The threshold's three one by one (one more if the first was sent before the fourth came
    # in), the rest in one digest, each exactly once.
    assert 3 <= len(singles) <= 4
    rest = flood[len(singles) :]
    assert digest.splitlines()[0] == (
        f"{len(rest)} notifications (more notifications arrived than can be sent one by one):"
    )
    assert arrivals(flood, person.messages) == Counter({i.key: 1 for i in flood})

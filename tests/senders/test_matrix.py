"""The Matrix sender against a real homeserver (Synapse): direct rooms remembered across
restarts, re-invites, sanitized HTML, 429s honoured, unknown users dead-lettered."""

from __future__ import annotations

import time
from typing import Any

import nio
import pytest
import redis.asyncio as aioredis

from fmn.api.verification import verification_item
from fmn.core.settings import Settings
from fmn.senders.digest import Digest
from fmn.senders.matrix import MatrixHandler
from fmn.senders.state import RedisSenderState
from fmn.sendqueue.deadletters import list_dead_letters
from fmn.sendqueue.topology import dead_letter_queue
from fmn.sendqueue.workitem import ChatContent
from fmn.transport import Broker
from tests.harness.matrix_server import Account, MatrixReader, Synapse
from tests.senders.conftest import MatrixSettings, _people, running
from tests.senders.helpers import SENT_AT, eventually, make_item, publish, queue_has

# One homeserver per module (conftest): keep these tests on one worker.
pytestmark = pytest.mark.xdist_group("matrix")


@pytest.fixture
def settings(matrix_settings_for: MatrixSettings) -> Settings:
    return matrix_settings_for()


def chat_item(address: str, text: str, markup: str) -> Any:
    item = make_item("matrix", address)
    return item.model_copy(update={"chat": ChatContent(text=text, html=markup)})


async def test_delivery_in_a_direct_room_with_sanitized_html(
    settings: Settings,
    broker: Broker,
    exchange: str,
    person: MatrixReader,
    redis_client: aioredis.Redis,
) -> None:
    user_id = person.client.user_id
    item = chat_item(
        user_id,
        "[koji] build done\x00\x1b[2J https://koji.example.org/1",
        '<b>build</b> <script>alert(1)</script><img src=x onerror="alert(2)">'
        '<a href="javascript:alert(3)">x</a> <a href="https://koji.example.org/1">link</a>',
    )
    async with running("matrix", settings):
        await publish(broker, exchange, item)
        [(room_id, content)] = await person.wait_for(1)
    assert content["msgtype"] == "m.text"
    assert content["body"] == "[koji] build done[2J https://koji.example.org/1"
    markup = content["formatted_body"]
    assert "<b>build</b>" in markup and 'href="https://koji.example.org/1"' in markup
    for bad in ("<script", "onerror", "javascript:", "<img"):
        assert bad not in markup
    assert person.invites == [room_id]
    assert await redis_client.get(f"fmn:senders:matrix:room:{user_id}") == room_id.encode()


async def test_bidi_controls_reach_no_matrix_message(
    settings: Settings, broker: Broker, exchange: str, person: MatrixReader
) -> None:
    item = chat_item(
        person.client.user_id,
        "[koji] build\u202e done\u2066",
        '<b>build\u202e</b> <a href="https://koji.example.org/1">li\u2067nk\u200f</a>',
    )
    async with running("matrix", settings):
        await publish(broker, exchange, item)
        [(_, content)] = await person.wait_for(1)
    assert content["body"] == "[koji] build done"
    markup = content["formatted_body"]
    assert "<b>build</b>" in markup and ">link</a>" in markup
    assert not any(c in markup for c in "\u202e\u2066\u2067\u200f")


async def test_room_remembered_across_restarts_and_reinvite_after_leaving(
    matrix_settings_for: MatrixSettings, broker: Broker, exchange: str, person: MatrixReader
) -> None:
    user_id = person.client.user_id
    settings = matrix_settings_for(membership_ttl=0)
    async with running("matrix", settings):
        await publish(broker, exchange, make_item("matrix", user_id))
        [(room_id, _)] = await person.wait_for(1)
    await person.client.room_leave(room_id)

    async with running("matrix", settings):  # a new process: the room comes from Redis
        await publish(broker, exchange, make_item("matrix", user_id))
        messages = await person.wait_for(2)
    assert [room for room, _ in messages] == [room_id, room_id]
    assert person.invites == [room_id, room_id]  # invited again after leaving


async def test_rate_limit_answers_are_honoured(
    settings: Settings,
    synapse: Synapse,
    bot: Account,
    broker: Broker,
    exchange: str,
    person: MatrixReader,
) -> None:
    """The homeserver allows 2 messages then 1 per second: every notification still arrives,
    waiting as the 429s say, and none is given up on."""
    synapse.override_ratelimit(bot, bot.user_id, per_second=1, burst=2)
    items = [make_item("matrix", person.client.user_id) for _ in range(5)]
    try:
        async with running("matrix", settings):
            started = time.monotonic()
            await publish(broker, exchange, *items)
            messages = await person.wait_for(5, timeout=30)
            elapsed = time.monotonic() - started
    finally:
        synapse.clear_ratelimit(bot, bot.user_id)
    assert sorted(c["body"] for _, c in messages) == sorted(i.chat.text for i in items)  # type: ignore[union-attr]
    assert elapsed >= 2.0
    assert await broker.queue_size(dead_letter_queue(exchange, "matrix")) == 0


async def test_unknown_and_invalid_recipients_are_dead_lettered(
    settings: Settings, broker: Broker, exchange: str, person: MatrixReader
) -> None:
    unknown = make_item("matrix", "@nobody:fmn.test")
    invalid = make_item("matrix", "nobody")
    good = make_item("matrix", person.client.user_id)
    async with running("matrix", settings):
        await publish(broker, exchange, unknown, invalid, good)
        await person.wait_for(1)
        await eventually(lambda: queue_has(broker, dead_letter_queue(exchange, "matrix"), 2))
    assert len(person.messages) == 1


async def test_digest_message(
    settings: Settings, person: MatrixReader, redis_client: aioredis.Redis
) -> None:
    items = [
        make_item("matrix", person.client.user_id, summary=f"update <b>{n}</b>") for n in range(3)
    ]
    state = RedisSenderState(redis_client, 60)
    handler = MatrixHandler(settings.senders.matrix, state)
    await handler.setup()
    try:
        digest = Digest("matrix", person.client.user_id, "alice", items, frozenset({"muted"}))
        await handler.send_digest(digest)
        [(_, content)] = await person.wait_for(1)
    finally:
        await handler.stop()
    assert (
        content["body"].splitlines()[0] == "3 notifications (held while notifications were muted):"
    )
    assert "- [koji] update <b>0</b> https://koji.example.org/" in content["body"]
    markup = content["formatted_body"]
    assert markup.count("<li>") == 3
    assert "update &lt;b&gt;0&lt;/b&gt;" in markup  # a summary is text, not markup


# ---- team rules: a group's room -----------------------------------------------------------------


async def test_a_team_room_is_joined_only_on_invitation_then_told_its_code_and_rules(
    settings: Settings, broker: Broker, exchange: str, person: MatrixReader, bot: Account
) -> None:
    """A sponsor's public room, by its alias: the bot does not walk into it uninvited (the code
    is dead-lettered with the reason and nothing is said there); once invited it joins, says the
    code, and then the team rule's notifications."""
    local = f"team{next(_people)}"
    made = await person.client.room_create(
        visibility=nio.RoomVisibility.public, preset=nio.RoomPreset.public_chat, alias=local
    )
    assert isinstance(made, nio.RoomCreateResponse), made
    alias = f"#{local}:{person.client.user_id.split(':', 1)[1]}"

    def code_item(code: str) -> Any:
        return verification_item(
            "python-sig", "matrix", alias, code, "https://notifications.example.org", SENT_AT
        )

    async with running("matrix", settings):
        await publish(broker, exchange, code_item("AAAA2222"))
        await eventually(lambda: queue_has(broker, dead_letter_queue(exchange, "matrix"), 1))
        [letter] = await list_dead_letters(broker, exchange, "matrix")
        assert letter.item is not None and letter.item.address == alias
        assert letter.reason == f"{bot.user_id} is not in {alias} and not invited: invite it first"
        await person.poll()
        assert person.messages == []

        invited = await person.client.room_invite(made.room_id, bot.user_id)
        assert isinstance(invited, nio.RoomInviteResponse), invited
        await publish(broker, exchange, code_item("BBBB3333"))
        [(room_id, content)] = await person.wait_for(1)
        team_item = make_item("matrix", alias, user="group:python-sig")
        await publish(broker, exchange, team_item)
        messages = await person.wait_for(2)
    assert room_id == made.room_id
    assert "fmn verification code for the group python-sig: BBBB3333" in content["body"]
    assert "<code>BBBB3333</code>" in content["formatted_body"]
    assert [room for room, _ in messages] == [made.room_id, made.room_id]
    assert messages[1][1]["body"] == team_item.chat.text  # type: ignore[union-attr]
    assert person.invites == []  # the bot joined the person's room: it invited nobody

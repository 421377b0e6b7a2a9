"""The demo feed: corpus reading, retargeting to the sample users, and the messages it publishes as
fedora-messaging publishers do."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from fmn.dev.embedded import SAMPLE_DIRECTORY
from fmn.dev.feed import (
    TOPIC_PREFIX,
    CorpusMessage,
    Feed,
    load_corpus,
    rename_map,
    retarget,
    shown,
)
from fmn.directory.local import DirectoryData
from fmn.rules.incoming import parse_message
from fmn.transport.base import QueueSpec
from fmn.transport.memory import MemoryBroker
from tests.conftest import CORPUS_DIR

BODHI = {
    "topic": "bodhi.update.comment",
    "format": "fedora-messaging",
    "headers": {"fedora_messaging_schema": "bodhi.update.comment"},
}


def write_corpus(folder: Path) -> Path:
    lines = [
        json.dumps({**BODHI, "body": {"comment": {"user": {"name": "ralph"}}}}),
        "not json",
        json.dumps(
            {
                "topic": "org.fedoraproject.prod.pkgdb.acl.update",
                "format": "fedmsg-v1",
                "headers": {"msg_id": "x"},
                "body": {"agent": "ralph", "package": "guake"},
                "fedmsg_meta_expected": {"usernames": ["ralph"], "packages": ["guake"]},
            }
        ),
        json.dumps({"topic": "no.body", "body": []}),
    ]
    (folder / "a.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_the_corpus_is_read_with_the_production_prefix(tmp_path: Path) -> None:
    messages = load_corpus(write_corpus(tmp_path))
    assert [m.topic for m in messages] == [
        TOPIC_PREFIX + "bodhi.update.comment",
        "org.fedoraproject.prod.pkgdb.acl.update",
    ]
    assert messages[0].schema == "bodhi.update.comment"
    assert messages[1].schema is None
    assert messages[1].usernames == ("ralph",)
    assert messages[1].packages == ("guake",)


def test_a_fedmsg_era_message_takes_the_schema_of_its_topic() -> None:
    body = {"agent": "releng", "repo": "dist-6E-epel-testing"}
    fedmsg = CorpusMessage("org.fedoraproject.stg.bodhi.compose.sync.done", body, None)
    (kept,) = shown([fedmsg])
    assert kept.topic == TOPIC_PREFIX + "bodhi.compose.sync.done"
    assert kept.schema == "bodhi.compose.sync.done.v1"
    assert kept.body == body


def test_messages_without_a_rendering_schema_are_left_out() -> None:
    unknown = CorpusMessage("org.fedoraproject.prod.pkgdb.acl.update", {"agent": "ralph"}, None)
    # A fedmsg-era koji body lacks what today's schema requires.
    misfit = CorpusMessage(
        "org.fedoraproject.prod.buildsys.build.state.change", {"name": "ansible", "new": 1}, None
    )
    base = CorpusMessage(TOPIC_PREFIX + "some.app.event", {"a": 1}, "base.message")
    assert shown([unknown, misfit, base]) == []


def test_every_replayed_corpus_message_reads_as_production() -> None:
    """What the demo feed publishes from the real corpus: a summary that is not the topic and a
    text that is not a dump of the body, once the consumer reads it off the bus."""
    data = DirectoryData.from_file(SAMPLE_DIRECTORY)
    messages = shown(load_corpus(CORPUS_DIR))
    assert len(messages) >= 100
    users = sorted(data.users)
    feed = Feed(MemoryBroker(), "amq.topic", messages, rename_map(messages, users, 3), interval=1)
    for message in messages:
        parsed = parse_message(feed._serialized(message))
        assert parsed.known_schema, message.topic
        assert parsed.summary != parsed.topic, message.topic
        assert " " in parsed.summary, parsed.summary
        assert "Body: {" not in parsed.text and not parsed.text.startswith("Id: "), parsed.text


def test_retarget_replaces_whole_string_values_only() -> None:
    body = {"user": "ralph", "list": ["ralph", "ralphie"], "text": "ralph did it", "ralph": 1}
    assert retarget(body, {"ralph": "alice"}) == {
        "user": "alice",
        "list": ["alice", "ralphie"],
        "text": "ralph did it",
        "ralph": 1,
    }


def test_frequent_names_are_shared_out_and_services_kept() -> None:
    def about(*names: str) -> CorpusMessage:
        return CorpusMessage("t", {}, None, usernames=names)

    messages = [about("ralph", "bodhi")] * 5 + [about("pingou")] * 3 + [about("kevin")] * 2
    names = rename_map(messages, ["alice", "bob"], per_user=2)
    assert "bodhi" not in names
    assert names == {"ralph": "alice", "pingou": "bob", "kevin": "bob"}


def test_published_messages_look_like_fedora_messaging_ones() -> None:
    data = DirectoryData.from_file(SAMPLE_DIRECTORY)
    messages = load_corpus(CORPUS_DIR)
    users = sorted(data.users)
    names = rename_map(messages, users, 3)
    feed = Feed(
        MemoryBroker(),
        "amq.topic",
        messages,
        names,
        interval=1,
        sample_users=users,
        projects=data.projects,
        seed=1,
    )
    seen = []
    for _ in range(len(users)):
        out = feed.next_outgoing()
        assert "sent-at" in out.headers
        parsed = parse_message(
            {
                "topic": out.routing_key,
                "headers": out.headers,
                "id": out.message_id,
                "body": json.loads(out.body),
            }
        )
        assert parsed.topic == out.routing_key
        seen.extend(set(parsed.usernames) & set(users))
        # Schema-less (fedmsg-era) messages are read from their filter headers.
        if "fedora_messaging_schema" not in out.headers:
            assert not parsed.known_schema
    # One message about each sample user in turn.
    assert sorted(seen) == users
    ids = {feed.next_outgoing().message_id for _ in range(20)}
    assert len(ids) == 20  # a replay is a new message


async def test_the_feed_publishes_at_its_pace_until_stopped(tmp_path: Path) -> None:
    broker = MemoryBroker()
    await broker.connect()
    await broker.declare_queue(QueueSpec("all", bindings=[("amq.topic", "#")]))
    messages = load_corpus(write_corpus(tmp_path))
    feed = Feed(broker, "amq.topic", messages, {"ralph": "alice"}, interval=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(feed.run(stop))
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.wait_for(task, 1)
    assert 3 <= await broker.queue_size("all") <= 8
    delivery = await broker.get("all")
    assert delivery is not None
    assert delivery.routing_key in {m.topic for m in messages}
    assert b"ralph" not in delivery.body

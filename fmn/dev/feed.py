"""The demo feed of the embedded run: real Fedora bus messages from the corpus (JSON Lines),
replayed on the bus exchange at a steady rate, as fedora-messaging publishers send them
(routing key = topic, fedora_messaging_* headers, a fresh message id, a JSON body).

Only messages whose schema renders them for humans are replayed (a summary that is not the topic, a
text that is not a dump of the body), so the demo's notifications read as production's: a
fedmsg-era message of the corpus takes the schema of its topic when its body fits one, the others
are left out.

So that the replayed messages concern people who can log in, the most frequent usernames of the
corpus are renamed into the sample users (every JSON string value equal to one of them), and the
sample directory gives the sample users packages that appear in the corpus. Messages about each
sample user, about their packages and the others take turns, so a notification comes within
seconds whoever logs in.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import itertools
import json
import logging
import random
import warnings
from collections import Counter, defaultdict
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from fedora_messaging import message as fm

from fmn.rules.incoming import BadMessage, message_class, parse_message
from fmn.transport import Broker, Outgoing, PublishFailed

log = logging.getLogger(__name__)

# Schema-package examples carry their class topic; the production bus adds this prefix.
TOPIC_PREFIX = "org.fedoraproject.prod."
# Pagure's examples come from its own test suite, of pagure.io-like projects: pagure.io
# publishes under its own prefix (src.fedoraproject.org's Pagure under Fedora's).
PAGURE_IO_PREFIX = "io.pagure.prod."


def production_topic(topic: str) -> str:
    """A schema-package example's class topic as production publishes it."""
    if topic.startswith(("org.", "io.")):
        return topic
    return (PAGURE_IO_PREFIX if topic.startswith("pagure.") else TOPIC_PREFIX) + topic


# Accounts of services, not people: renaming them would make robots of the sample users.
SERVICE_ACCOUNTS = frozenset(
    {"admin", "anitya", "bodhi", "koschei", "noggin", "packit", "releng", "testing"}
    | {"fedora-atomic", "upstream-release-monitoring", "zodbot", "pagure"}
)


@dataclass(frozen=True)
class CorpusMessage:
    topic: str
    body: dict[str, Any]
    schema: str | None
    # fedmsg-era messages have no schema class: the names fedmsg_meta found in them become
    # fedora-messaging's filter headers, as a publisher of today would send.
    usernames: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str) and v) if isinstance(value, list) else ()


def _read_line(line: str) -> CorpusMessage | None:
    raw = json.loads(line)
    topic, body = raw.get("topic"), raw.get("body")
    if not isinstance(topic, str) or not isinstance(body, dict):
        return None
    headers = raw.get("headers") if isinstance(raw.get("headers"), dict) else {}
    schema = headers.get("fedora_messaging_schema")
    if raw.get("format") == "fedora-messaging":
        topic = production_topic(topic)
    expected = raw.get("fedmsg_meta_expected")
    expected = expected if isinstance(expected, dict) else {}
    return CorpusMessage(
        topic=topic,
        body=body,
        schema=schema if isinstance(schema, str) else None,
        usernames=_strings(expected.get("usernames")),
        packages=_strings(expected.get("packages")),
    )


def load_corpus(directory: Path) -> list[CorpusMessage]:
    """Every readable message of the directory's *.jsonl files, in file order."""
    messages = []
    for path in sorted(directory.glob("*.jsonl")):
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    message = _read_line(line)
                except ValueError as exc:
                    log.warning("%s:%d: not a message: %s", path.name, number, exc)
                    continue
                if message is not None:
                    messages.append(message)
    return messages


@functools.cache
def _schemas_by_topic() -> dict[str, list[str]]:
    """The installed schema names of each topic (a schema class declares its topic)."""
    found: dict[str, list[str]] = defaultdict(list)
    for entry in entry_points(group="fedora.messages"):
        topic = getattr(message_class(entry.name), "topic", None)
        if isinstance(topic, str) and topic:
            found[topic].append(entry.name)
    return dict(found)


def _renders(message: CorpusMessage) -> bool:
    """Whether its schema gives the message a summary and a text of its own."""
    try:
        bus = _bus_message(message, {})
        bus.validate()
        summary, text = bus.summary, str(bus)
    except Exception:  # a body its schema refuses or cannot read: no notification to show
        return False
    return bool(summary) and summary != bus.topic and text != fm.Message.__str__(bus)


def _with_schema_of_topic(message: CorpusMessage) -> CorpusMessage | None:
    """A fedmsg-era message as today's publisher of its topic sends it, when its body fits that
    schema (not a deprecated one) and renders; on the production topic."""
    parts = message.topic.split(".", 3)
    short = parts[3] if message.topic.startswith("org.fedoraproject.") and len(parts) == 4 else ""
    for topic, schemas in (
        (message.topic, _schemas_by_topic().get(message.topic, [])),
        (TOPIC_PREFIX + short, _schemas_by_topic().get(short, [])),
    ):
        for schema in schemas:
            candidate = dataclasses.replace(message, topic=topic, schema=schema)
            with warnings.catch_warnings():
                warnings.simplefilter("error", DeprecationWarning)
                if _renders(candidate):
                    return candidate
    return None


def shown(messages: Sequence[CorpusMessage]) -> list[CorpusMessage]:
    """The messages whose notifications read as production's (see the module's docstring)."""
    kept = []
    for message in messages:
        found = message if message.schema and _renders(message) else None
        if found is None and not message.schema:
            found = _with_schema_of_topic(message)
        if found is not None:
            kept.append(found)
    return kept


def retarget(value: Any, names: Mapping[str, str]) -> Any:
    """A copy of a JSON value with every string equal to a key of `names` replaced."""
    if isinstance(value, str):
        return names.get(value, value)
    if isinstance(value, list):
        return [retarget(v, names) for v in value]
    if isinstance(value, dict):
        return {k: retarget(v, names) for k, v in value.items()}
    return value


def _bus_message(message: CorpusMessage, names: Mapping[str, str]) -> fm.Message:
    """The message as fedora-messaging would publish it: its schema class fills in the headers
    (schema, sent-at, severity, users and packages for filtering) and a fresh id."""
    headers: dict[str, Any] = {}
    for name in message.usernames:
        headers[f"fedora_messaging_user_{names.get(name, name)}"] = True
    for package in message.packages:
        headers[f"fedora_messaging_rpm_{package}"] = True
    cls = message_class(message.schema) if message.schema else fm.Message
    bus = cls(body=retarget(message.body, names), topic=message.topic, headers=headers)
    if not message.schema:
        # Not "base.message", which says there is nothing more to read: without a schema the
        # consumer reads users and packages from the filter headers, as for any unknown schema.
        bus._headers.pop("fedora_messaging_schema", None)
        bus._headers.pop("fedora_messaging_schema_package", None)
    return bus


def _names_in(message: CorpusMessage) -> list[str]:
    """The people a message is about, not the one who acted: a sample user renamed from them
    gets the message's notification (their own actions are not notified)."""
    try:
        headers = {"fedora_messaging_schema": message.schema} if message.schema else {}
        parsed = parse_message(
            {"topic": message.topic, "body": message.body, "headers": headers, "id": "corpus"}
        )
        found = [name for name in parsed.usernames if name != parsed.agent_name]
    except BadMessage:
        found = []
    return [*found, *message.usernames]


def rename_map(
    messages: Sequence[CorpusMessage], sample_users: Sequence[str], per_user: int
) -> dict[str, str]:
    """The most frequent (non-service) usernames of the corpus, shared out among the sample
    users."""
    counts = Counter(
        name
        for message in messages
        for name in set(_names_in(message))
        if name not in SERVICE_ACCOUNTS and name not in sample_users
    )
    if not sample_users:
        return {}
    # Each name, most frequent first, to the user with the fewest messages so far: the sample
    # users get about as many messages each.
    load = dict.fromkeys(sorted(sample_users), 0)
    names = {}
    for name, count in counts.most_common(per_user * len(load)):
        user = min(load, key=lambda u: (load[u], u))
        names[name] = user
        load[user] += count
    return names


class Feed:
    def __init__(
        self,
        broker: Broker,
        exchange: str,
        messages: Sequence[CorpusMessage],
        names: Mapping[str, str],
        *,
        interval: float,
        sample_users: Collection[str] = (),
        projects: Collection[str] = (),
        seed: int | None = None,
    ) -> None:
        self.broker = broker
        self.exchange = exchange
        self.names = dict(names)
        self.interval = interval
        self.published = 0
        self._order = self._interleave(messages, sample_users, set(projects), seed)

    def _stream_of(self, message: CorpusMessage, users: list[str], projects: set[str]) -> str:
        """Which stream a message joins: the first sample user it is about (and who did not do
        it), "owned" for their packages only, else "other"; "" if it cannot be read."""
        try:
            parsed = parse_message(self._serialized(message))
        except Exception as exc:  # a corpus message its schema class cannot take: left out
            log.debug("feed: %s left out: %r", message.topic, exc)
            return ""
        for user in users:
            if user in parsed.usernames and user != parsed.agent_name:
                return user
        if set(users) & set(parsed.usernames) or projects & set(parsed.artifact_paths):
            return "owned"
        return "other"

    def _interleave(
        self,
        messages: Sequence[CorpusMessage],
        users: Collection[str],
        projects: set[str],
        seed: int | None,
    ) -> Iterator[CorpusMessage]:
        """Forever, in turn: a message about each sample user, one about their packages, any
        other; each stream shuffled and replayed in a loop. So everyone gets a notification
        from the default rule within a few messages."""
        rng = random.Random(seed)  # noqa: S311 (an order of demo messages, no secret)
        order = sorted(users)
        streams: dict[str, list[CorpusMessage]] = {name: [] for name in [*order, "owned", "other"]}
        for message in messages:
            name = self._stream_of(message, order, projects)
            if name:
                streams[name].append(message)
        cycles = []
        for stream in streams.values():
            if stream:
                rng.shuffle(stream)
                cycles.append(itertools.cycle(stream))
        return (next(stream) for stream in itertools.cycle(cycles))

    def _serialized(self, message: CorpusMessage) -> dict[str, Any]:
        bus = _bus_message(message, self.names)
        return {"topic": bus.topic, "headers": bus._headers, "id": bus.id, "body": bus.body}

    def next_outgoing(self) -> Outgoing:
        data = self._serialized(next(self._order))
        return Outgoing(
            routing_key=data["topic"],
            body=json.dumps(data["body"]).encode(),
            message_id=data["id"],
            headers=data["headers"],
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Publish one message every `interval` seconds until `stop` is set."""
        while not stop.is_set():
            outgoing = self.next_outgoing()
            try:
                await self.broker.publish(self.exchange, outgoing)
                self.published += 1
                log.debug("feed: %s (%s)", outgoing.routing_key, outgoing.message_id)
            except PublishFailed as exc:
                log.warning("feed: %s not published: %s", outgoing.routing_key, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)

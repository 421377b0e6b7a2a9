"""The recent-message archive, written by the consumer and read by rule previews: every
received message with its match keys (users, artifacts, agent, application), so a preview reads
only the messages that could match it; pruned past the retention period. The one module that
touches the archive's tables.

Whatever a bus message carries, the archive can store it: header values AMQP allows but JSON
does not (bytes, decimals, timestamps), NaN, NUL characters and lone surrogates (which
PostgreSQL's text refuses) are turned into storable values first. And should the database still
refuse one message, the others of its batch are archived without it: a message that cannot be
stored must not hold the consumer back (archiving is for previews, not for delivery).

The consumer's per-rule counts (`GeneratedCounts`) are written here too: summed in memory and
written in one transaction per interval instead of one row per notification (FMN 3 wrote a
row per hit).
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import json
import logging
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, cast

import orjson
from sqlalchemy import (
    ARRAY,
    JSON,
    Integer,
    Table,
    UnicodeText,
    and_,
    any_,
    bindparam,
    func,
    insert,
    or_,
    select,
    text,
)
from sqlalchemy import cast as cast_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fmn.db.models import ArchivedMessage, ArchivedMessageKey, Generated, Rule
from fmn.db.session import prune_in_batches
from fmn.rules.incoming import ParsedMessage
from fmn.rules.schema import ARTIFACT_ATTRIBUTES

log = logging.getLogger(__name__)

# Written through their tables, not the mapped classes: a Core INSERT skips the ORM's bulk
# machinery (per-row bookkeeping that cost more than the statement itself).
_MESSAGES = cast(Table, ArchivedMessage.__table__)
_KEYS = cast(Table, ArchivedMessageKey.__table__)

# A message: parsed, in fedora-messaging's serialized form, and its body as received (None if
# not at hand), which is stored as it came when PostgreSQL's json type takes it as it is.
Archivable = tuple[ParsedMessage, dict[str, Any], bytes | None]

# Key kinds: a message's users and artifacts (from these attributes), its agent, its application.
KEY_ATTRIBUTES = {
    "user": "usernames",
    "package": "packages",
    "container": "containers",
    "module": "modules",
    "flatpak": "flatpaks",
}
USER_KIND = "user"
AGENT_KIND = "agent"
APP_KIND = "app"
PROJECT_KIND = "project"  # a forge project's key ("pagure.io:fesco", fmn.rules.forges)
# Dist-git namespace ("rpms") -> the key kind of its artifacts ("package").
NAMESPACE_KINDS: dict[str, str] = {
    ARTIFACT_ATTRIBUTES[attribute]: kind
    for kind, attribute in KEY_ATTRIBUTES.items()
    if attribute in ARTIFACT_ATTRIBUTES
}
# Values per candidates query (bind parameters are limited).
VALUES_PER_QUERY = 5000


def match_keys(message: ParsedMessage) -> list[tuple[str, str]]:
    """The keys a message is found by: (kind, value) pairs."""
    keys = [
        (kind, value)
        for kind, attribute in KEY_ATTRIBUTES.items()
        for value in dict.fromkeys(getattr(message, attribute))
    ]
    if message.agent_name:
        keys.append((AGENT_KIND, message.agent_name))
    if message.app_key:
        keys.append((APP_KIND, message.app_key))
    keys.extend((PROJECT_KIND, project) for project in message.forge_projects)
    return keys


def path_keys(paths: Iterable[str]) -> dict[str, set[str]]:
    """The keys of dist-git paths ("rpms/foo"), by kind; paths of other namespaces have none."""
    keys: dict[str, set[str]] = {}
    for path in paths:
        namespace, _, name = path.partition("/")
        kind = NAMESPACE_KINDS.get(namespace)
        if kind is not None and name:
            keys.setdefault(kind, set()).add(name)
    return keys


@functools.cache
def _insert(dialect: str) -> Any:
    """INSERT of archived messages whose `data` comes as JSON text, serialized once by
    storable_json_text (the JSON column type would serialize it a second time); a message
    already there is skipped. Built once per dialect: building it cost more than running it."""
    if dialect == "postgresql":
        data: Any = cast_(bindparam("data_json", type_=UnicodeText), JSON)
        statement: Any = postgresql.insert(_MESSAGES).values(data=data)
    else:
        # SQLite keeps JSON as text (and a CAST to JSON there would mean NUMERIC).
        data = bindparam("data_json", type_=UnicodeText)
        statement = sqlite.insert(_MESSAGES).values(data=data)
    return statement.on_conflict_do_nothing(index_elements=["message_id"]).returning(
        _MESSAGES.c.id, _MESSAGES.c.message_id
    )


def storable_text(value: str) -> str:
    """The text without what PostgreSQL refuses: NUL characters and lone surrogates."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def storable_json_text(data: Any) -> str:
    """`data` as JSON text that PostgreSQL's json type takes: as it is (the common case,
    serialized once), else a converted copy."""
    try:
        return json.dumps(data, allow_nan=False)
    except (TypeError, ValueError):
        return json.dumps(_converted(data), allow_nan=False)


def storable_message_json(data: dict[str, Any], raw_body: bytes | None) -> str:
    """A serialized message as JSON text, its body taken as received when that text is JSON
    PostgreSQL takes (strict UTF-8, no NaN or Infinity): serializing the body again was the
    archive's largest cost."""
    body = _stored_as_received(raw_body)
    if body is None or "body" not in data:
        return storable_json_text(data)
    rest = storable_json_text({k: v for k, v in data.items() if k != "body"})
    return ("{" if rest == "{}" else rest[:-1] + ", ") + '"body": ' + body + "}"


def _stored_as_received(raw: bytes | None) -> str | None:
    # json.loads took it already, so it is JSON; these are what it takes and PostgreSQL does not
    # (a string that merely contains "NaN" goes the slow way too, to no harm).
    if raw is None or b"NaN" in raw or b"Infinity" in raw or raw.startswith(b"\xef\xbb\xbf"):
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:  # UTF-16 or -32 JSON, or lone surrogates
        return None


def _converted(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): _converted(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_converted(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, decimal.Decimal):
        return _converted(float(value)) if value.is_finite() else str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value)


def is_outage(exc: BaseException) -> bool:
    """The database could not be reached (try again later), as opposed to refusing the data."""
    if isinstance(exc, OperationalError | InterfaceError | OSError | TimeoutError):
        return True
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or isinstance(exc.orig, OSError | TimeoutError)
    return False


async def archive_batch(
    sessionmaker: async_sessionmaker[AsyncSession], messages: Sequence[Archivable]
) -> int:
    """Archive a batch in one transaction; if the database refuses it (not an outage, which
    raises), each message in its own transaction, leaving out the ones it refuses."""
    try:
        async with sessionmaker.begin() as session:
            return await archive_messages(session, messages)
    except Exception as exc:
        if is_outage(exc):
            raise
        if len(messages) == 1:
            # Refused, not unreachable: trying again would refuse it again, for ever.
            log.error("message %s left out of the archive: %s", messages[0][0].id, exc)
            return 0
        log.warning("archive refused a batch (%s); archiving its messages one by one", exc)
    archived = 0
    for message in messages:
        try:
            async with sessionmaker.begin() as session:
                archived += await archive_messages(session, [message])
        except Exception as exc:
            if is_outage(exc):
                raise
            log.error("message %s left out of the archive: %s", message[0].id, exc)
    return archived


async def archive_messages(session: AsyncSession, messages: Sequence[Archivable]) -> int:
    """Store messages (parsed, serialized) and their keys; a message already archived (a
    redelivery) is skipped. Returns how many were new."""
    if not messages:
        return 0
    received = dt.datetime.now(dt.UTC)
    rows = [
        {
            "message_id": storable_text(parsed.id),
            "topic": storable_text(parsed.topic),
            "sent_at": parsed.sent_at,
            "data_json": storable_message_json(data, raw_body),
            "received_at": received,
        }
        for parsed, data, raw_body in messages
    ]
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return await _archive_postgresql(session, messages, rows)
    # One statement with a parameter list: SQLAlchemy batches it into multi-row INSERTs and the
    # compiled form is cached (a .values(rows) statement is compiled anew for each batch size).
    statement = _insert(dialect)
    new = {message_id: pk for pk, message_id in (await session.execute(statement, rows)).all()}
    keys = [
        {
            "message_pk": new[row["message_id"]],
            "kind": kind,
            "value": storable_text(value),
            "sent_at": parsed.sent_at,
        }
        for (parsed, _, _), row in zip(messages, rows, strict=True)
        if row["message_id"] in new
        for kind, value in match_keys(parsed)
    ]
    if keys:
        await session.execute(insert(_KEYS), keys)
    return len(new)


# The messages and their keys in one statement of one round trip, whatever the batch size: each
# message column travels as one array, so the statement's text and plan never change (SQLAlchemy's
# multi-row INSERTs cost the consumer more CPU than the rest of archiving). The keys, several
# short strings a message, travel as one JSON text: asyncpg checks every element of an array
# parameter against collections.abc (two checks a string), which made the keys' arrays cost
# more than serializing them in orjson's C; a key's send time is its message's.
_ARCHIVE_POSTGRESQL = text(
    """
    WITH new AS (
        INSERT INTO archived_messages (message_id, topic, sent_at, received_at, data)
        SELECT m.message_id, m.topic, m.sent_at, :received_at, m.data::json
        FROM unnest(
            CAST(:message_ids AS text[]), CAST(:topics AS text[]),
            CAST(:sent_ats AS timestamptz[]), CAST(:datas AS text[])
        ) AS m(message_id, topic, sent_at, data)
        ON CONFLICT (message_id) DO NOTHING
        RETURNING id, message_id, sent_at
    ), new_keys AS (
        INSERT INTO archived_message_keys (message_pk, kind, value, sent_at)
        SELECT new.id, k.kind, k.value, new.sent_at
        FROM json_to_recordset(CAST(:keys AS json)) AS k(message_id text, kind text, value text)
        JOIN new ON new.message_id = k.message_id
    )
    SELECT count(*) FROM new
    """
)


async def _archive_postgresql(
    session: AsyncSession, messages: Sequence[Archivable], rows: list[dict[str, Any]]
) -> int:
    keys = [
        {"message_id": row["message_id"], "kind": kind, "value": storable_text(value)}
        for (parsed, _, _), row in zip(messages, rows, strict=True)
        for kind, value in match_keys(parsed)
    ]
    new = await session.scalar(
        _ARCHIVE_POSTGRESQL,
        {
            "received_at": dt.datetime.now(dt.UTC),
            "message_ids": [row["message_id"] for row in rows],
            "topics": [row["topic"] for row in rows],
            "sent_ats": [row["sent_at"] for row in rows],
            "datas": [row["data_json"] for row in rows],
            "keys": orjson.dumps(keys).decode(),
        },
    )
    return int(new or 0)


def retention_cutoff(retention_days: int, now: dt.datetime | None = None) -> dt.datetime:
    """The oldest send time the archive keeps: older messages are pruned, and never read."""
    return (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=retention_days)


async def prune_archive(
    sessionmaker: async_sessionmaker[AsyncSession], retention_days: int, batch_size: int
) -> tuple[int, int]:
    """Forget messages sent before the retention period, `batch_size` at a time (each batch in
    a transaction of its own). Returns how many messages went and in how many batches."""
    return await prune_in_batches(
        sessionmaker,
        ArchivedMessage.id,
        ArchivedMessage.sent_at < retention_cutoff(retention_days),
        batch_size,
        dependents=[ArchivedMessageKey.message_pk],
    )


async def candidates(
    session: AsyncSession, keys: dict[str, set[str]], start: dt.datetime, end: dt.datetime
) -> list[int]:
    """Archived messages (their primary keys) having any of `keys`, sent in [start, end),
    newest first."""
    found: dict[int, dt.datetime] = {}
    key = ArchivedMessageKey
    for kind, values in keys.items():
        ordered = sorted(values)
        for first in range(0, len(ordered), VALUES_PER_QUERY):
            chunk = ordered[first : first + VALUES_PER_QUERY]
            rows = await session.execute(
                select(key.message_pk, key.sent_at).where(
                    and_(
                        key.kind == kind,
                        _among(session, key.value, chunk, UnicodeText),
                        key.sent_at >= start,
                        key.sent_at < end,
                    )
                )
            )
            for pk, sent_at in rows.all():
                found[pk] = sent_at
    return sorted(found, key=lambda pk: (found[pk], pk), reverse=True)


async def topic_candidates(
    session: AsyncSession, prefixes: Iterable[str], start: dt.datetime, end: dt.datetime
) -> list[int]:
    """Archived messages (their primary keys) whose topic starts with any of `prefixes` (""
    for any topic), sent in [start, end), newest first."""
    wanted = set(prefixes)
    message = ArchivedMessage
    statement = select(message.id).where(message.sent_at >= start, message.sent_at < end)
    if "" not in wanted:
        statement = statement.where(
            or_(*(message.topic.startswith(p, autoescape=True) for p in sorted(wanted)))
        )
    rows = await session.execute(statement.order_by(message.sent_at.desc(), message.id.desc()))
    return list(rows.scalars())


async def oldest_since(session: AsyncSession, since: dt.datetime) -> dt.datetime | None:
    """When the oldest archived message not before `since` was sent (None: none is)."""
    oldest = await session.scalar(
        select(func.min(ArchivedMessage.sent_at)).where(ArchivedMessage.sent_at >= since)
    )
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=dt.UTC)
    return oldest


async def topic_counts(
    session: AsyncSession, prefix: str, since: dt.datetime
) -> list[tuple[str, int]]:
    """How many messages of each topic starting with `prefix` were archived since `since`."""
    message = ArchivedMessage
    statement = select(message.topic, func.count()).where(message.sent_at >= since)
    if prefix:
        statement = statement.where(message.topic.startswith(prefix, autoescape=True))
    rows = await session.execute(statement.group_by(message.topic))
    return [(topic, int(count)) for topic, count in rows.all()]


async def key_values(
    session: AsyncSession, kind: str, prefix: str, contains: str, limit: int
) -> list[str]:
    """Distinct archived key values of a kind that start with `prefix` and contain
    `contains` past it (ignoring case), by value."""
    key = ArchivedMessageKey
    statement = select(key.value).where(key.kind == kind).distinct().order_by(key.value)
    statement = statement.where(key.value.startswith(prefix, autoescape=True))
    if contains:
        rest = func.lower(func.substr(key.value, len(prefix) + 1))
        statement = statement.where(rest.contains(contains.lower(), autoescape=True))
    return list((await session.execute(statement.limit(limit))).scalars())


async def read_messages(
    session: AsyncSession, pks: Sequence[int]
) -> dict[int, tuple[dt.datetime, dict[str, Any]]]:
    """The archived messages (sent time, serialized message) by primary key; those pruned
    meanwhile are missing."""
    rows = await session.execute(
        select(ArchivedMessage.id, ArchivedMessage.sent_at, ArchivedMessage.data).where(
            _among(session, ArchivedMessage.id, list(pks), Integer)
        )
    )
    return {pk: (sent_at, data) for pk, sent_at, data in rows.all()}


def _among(session: AsyncSession, column: Any, values: list[Any], item_type: Any) -> Any:
    """`column IN values`; on PostgreSQL as `= ANY(array)`, one parameter instead of one per
    value (rendering hundreds of parameters per query costs more than running it)."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(
            cast_(bindparam("values", values, type_=ARRAY(item_type)), ARRAY(item_type))
        )
    return column.in_(values)


class GeneratedCounts:
    def __init__(self) -> None:
        self._pending: Counter[int] = Counter()

    def add(self, rule_ids: Iterable[int]) -> None:
        self._pending.update(rule_ids)

    def __len__(self) -> int:
        return len(self._pending)

    async def flush(self, session: AsyncSession) -> int:
        """Write the pending counts; returns how many rules had some. On error the counts stay
        pending for the next flush."""
        if not self._pending:
            return 0
        pending, self._pending = self._pending, Counter()
        try:
            # Rules deleted since they matched would fail the foreign key: skip them.
            existing = set(
                (await session.scalars(select(Rule.id).where(Rule.id.in_(pending)))).all()
            )
            now = dt.datetime.now(dt.UTC)
            rows = [
                {"rule_id": rule_id, "when": now, "count": count}
                for rule_id, count in pending.items()
                if rule_id in existing
            ]
            if rows:
                await session.execute(insert(Generated), rows)
        except BaseException:
            self._pending.update(pending)
            raise
        return len(rows)

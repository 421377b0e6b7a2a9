"""The recent-message archive: every received message with its match keys, so a rule preview
reads only the messages that could match it; pruned past the retention period."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from fmn.db.models import ArchivedMessage, ArchivedMessageKey
from fmn.rules.message import ParsedMessage

# Key kinds, as the preview asks for them.
KEY_ATTRIBUTES = {
    "user": "usernames",
    "package": "packages",
    "container": "containers",
    "module": "modules",
    "flatpak": "flatpaks",
}


def match_keys(message: ParsedMessage) -> list[tuple[str, str]]:
    keys = [
        (kind, value)
        for kind, attribute in KEY_ATTRIBUTES.items()
        for value in dict.fromkeys(getattr(message, attribute))
    ]
    if message.agent_name:
        keys.append(("agent", message.agent_name))
    if message.app_name:
        keys.append(("app", message.app_name.lower()))
    return keys


def _insert(session: AsyncSession) -> Any:
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    return module.insert(ArchivedMessage)


async def archive_messages(
    session: AsyncSession, messages: Sequence[tuple[ParsedMessage, dict[str, Any]]]
) -> int:
    """Store messages (parsed, serialized) and their keys; a message already archived (a
    redelivery) is skipped. Returns how many were new."""
    if not messages:
        return 0
    rows = [
        {"message_id": parsed.id, "topic": parsed.topic, "sent_at": parsed.sent_at, "data": data}
        for parsed, data in messages
    ]
    # One statement with a parameter list: SQLAlchemy batches it into multi-row INSERTs and the
    # compiled form is cached (a .values(rows) statement is compiled anew for each batch size).
    statement = (
        _insert(session)
        .on_conflict_do_nothing(index_elements=["message_id"])
        .returning(ArchivedMessage.id, ArchivedMessage.message_id)
    )
    new = {message_id: pk for pk, message_id in (await session.execute(statement, rows)).all()}
    keys = [
        {"message_pk": new[parsed.id], "kind": kind, "value": value, "sent_at": parsed.sent_at}
        for parsed, _ in messages
        if parsed.id in new
        for kind, value in match_keys(parsed)
    ]
    if keys:
        await session.execute(insert(ArchivedMessageKey), keys)
    return len(new)


async def prune_archive(session: AsyncSession, retention_days: int) -> int:
    """Forget messages sent before the retention period; returns how many."""
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=retention_days)
    old = select(ArchivedMessage.id).where(ArchivedMessage.sent_at < cutoff)
    await session.execute(delete(ArchivedMessageKey).where(ArchivedMessageKey.message_pk.in_(old)))
    result = await session.execute(delete(ArchivedMessage).where(ArchivedMessage.sent_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)

"""Building work items, publishing them, and waiting for things to happen."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from fmn.db.models import Delivery
from fmn.sendqueue.workitem import (
    ChatContent,
    EmailContent,
    MessageInfo,
    Protocol,
    RuleRef,
    WebContent,
    WorkItem,
    idempotency_key,
    pack,
    routing_key,
)
from fmn.transport.base import Broker, Outgoing

_seq = itertools.count(1)
SENT_AT = dt.datetime(2024, 5, 1, 12, 30, 15, tzinfo=dt.UTC)


def make_item(
    protocol: Protocol,
    address: str,
    *,
    user: str = "alice",
    summary: str | None = None,
    subject: str | None = None,
    text: str | None = None,
    metadata: dict[str, str] | None = None,
    message_id: str | None = None,
    rules: list[RuleRef] | None = None,
    app_name: str = "koji",
) -> WorkItem:
    n = next(_seq)
    message_id = message_id or str(uuid.uuid4())
    summary = summary or f"build {n} of foo completed"
    message = MessageInfo(
        id=message_id,
        topic="org.fedoraproject.prod.buildsys.build.state.change",
        sent_at=SENT_AT,
        app_name=app_name,
        agent_name="bob",
        summary=summary,
        url=f"https://koji.example.org/buildinfo?buildID={n}",
        usernames=["bob"],
        packages=["foo"],
    )
    email = chat = web = None
    if protocol == "web":
        web = WebContent(subject=subject or f"[{app_name}] {summary}", text=text or summary)
    elif protocol == "email":
        email = EmailContent(
            subject=subject or f"[{app_name}] {summary}",
            text=text or f"{summary}\nhttps://koji.example.org/buildinfo?buildID={n}",
            html=f"<p>{summary} <script>alert(1)</script></p>",
            metadata=metadata if metadata is not None else {"Topic": message.topic, "App": "koji"},
        )
    else:
        chat = ChatContent(text=text or f"[{app_name}] {summary}", html=f"<b>{summary}</b>")
    return WorkItem(
        key=idempotency_key(message_id, protocol, address),
        protocol=protocol,
        address=address,
        user=user,
        rules=rules if rules is not None else [RuleRef(id=7, name="My packages")],
        message=message,
        email=email,
        chat=chat,
        web=web,
    )


async def publish(
    broker: Broker,
    exchange: str,
    *items: WorkItem | bytes,
    protocol: str = "",
    per_message: int = 1,
) -> None:
    """Publish work items as the consumer does (per_message of them in one AMQP message), then
    raw bodies as they are."""
    work = [item for item in items if isinstance(item, WorkItem)]
    raw = [Outgoing(routing_key(protocol), item) for item in items if isinstance(item, bytes)]
    await broker.publish_many(exchange, pack(work, per_message) + raw)


async def eventually(
    check: Callable[[], Awaitable[Any] | Any], timeout: float = 60.0, interval: float = 0.05
) -> Any:
    """Wait until `check()` returns something truthy; return it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result) or isinstance(result, Awaitable):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {check}")
        await asyncio.sleep(interval)


async def delivery_log(pg_url: str, **where: Any) -> list[Delivery]:
    engine = create_async_engine(pg_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            query = select(Delivery)
            for name, value in where.items():
                column = getattr(Delivery, name)
                query = query.where(
                    column.in_(value) if isinstance(value, list) else column == value
                )
            rows = (await conn.execute(query.order_by(Delivery.id))).all()
            return [Delivery(**row._mapping) for row in rows]
    finally:
        await engine.dispose()


async def queue_has(broker: Broker, queue: str, count: int) -> bool:
    return await broker.queue_size(queue) == count

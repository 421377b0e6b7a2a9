"""The live stream, served for real: a notification stored by the web sender reaches a client
connected to another API process (Redis pub/sub between them); a reconnect with Last-Event-ID
gets what it missed; read changes made through one API update the count on the other; a
closed stream leaves nothing behind."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fmn.core.settings import Settings
from fmn.db import migrations
from fmn.sendqueue.topology import declare_send_topology
from fmn.sendqueue.workitem import RuleRef
from fmn.transport import make_broker
from tests.api.conftest import ADMIN_GROUP, serve_api
from tests.api.streams import Stream, open_stream
from tests.harness import services
from tests.harness.oidc import CLIENT_ID, CLIENT_SECRET, Provider
from tests.harness.signing import SIGNING_KEY
from tests.senders.conftest import RETRY_DELAYS, running, sender_settings
from tests.senders.helpers import eventually, make_item, publish

stream = contextlib.asynccontextmanager(open_stream)


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    name = f"{services.pg_database_name()}_streams"
    url = services.recreate_database(name)
    migrations.upgrade(url)
    yield url
    services.drop_database(name)


@pytest.fixture(scope="module")
def replicas(database: str, oidc: Provider, bus_url: str) -> Iterator[list[tuple[str, FastAPI]]]:
    """Two API processes' worth of app (each its own loop, engine and Redis subscription)."""
    settings = Settings(
        database={"url": database, "pool_size": 4},
        cache={"url": services.redis_url()},
        bus={"amqp_url": bus_url},
        send_queue={"amqp_url": bus_url, "exchange": "fmn.send.streams"},
        oidc={
            "provider_url": oidc.issuer,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "token_check": "introspection",
            "admin_groups": [ADMIN_GROUP],
            "allowed_clients": [CLIENT_ID],
        },
        api={"frontend_dir": "/nonexistent", "secret_keys": [SIGNING_KEY]},
        web={"heartbeat": 0.5},
    )
    with serve_api(settings) as first, serve_api(settings) as second:
        yield [first, second]


@pytest.fixture
async def sender(database: str, amqp_url: str, redis_url: str) -> AsyncIterator[Settings]:
    """`fmn sender web` on its own exchange, running in the test's loop."""
    exchange = f"fmn.send.{uuid.uuid4().hex[:8]}"
    settings = sender_settings(amqp_url, redis_url, database, exchange)
    broker = make_broker(amqp_url)
    await broker.connect()
    await declare_send_topology(broker, exchange, RETRY_DELAYS)
    await broker.close()
    async with running("web", settings):
        yield settings


async def notify(settings: Settings, user: str, n: int = 1) -> list[str]:
    """Publish n work items for the user's inbox; their bus message ids."""
    broker = make_broker(settings.send_queue.amqp_url)
    await broker.connect()
    items = [make_item("web", user, user=user, rules=[RuleRef(id=1)]) for _ in range(n)]
    try:
        await publish(broker, settings.send_queue.exchange, *items)
    finally:
        await broker.close()
    return [item.message.id for item in items]


async def next_notification(s: Stream) -> dict[str, Any]:
    event = await s.reader.next("notification")
    body: dict[str, Any] = event.json()
    assert event.id == str(body["id"])
    return body


async def test_a_notification_reaches_a_stream_on_the_other_replica(
    replicas: list[tuple[str, FastAPI]], sender: Settings, auth: Any
) -> None:
    (first, _), (second, second_app) = replicas
    async with httpx.AsyncClient() as http:
        # alice's first log-in, through the first replica.
        assert (await http.get(f"{first}/api/v1/users/me", headers=auth("alice"))).is_success
        url = f"{second}/api/v1/users/alice/inbox/stream"
        async with stream(http, url, auth("alice")) as s:
            assert s.response.status_code == 200
            assert s.response.headers["content-type"].startswith("text/event-stream")
            start = (await s.reader.next("count")).json()["unread"]
            [message_id] = await notify(sender, "alice")
            entry = await next_notification(s)
            assert entry["message_id"] == message_id and entry["read"] is False
            assert (await s.reader.next("count")).json() == {"unread": start + 1}
            # The same entry as the list shows.
            listed = await http.get(f"{first}/api/v1/users/alice/inbox", headers=auth("alice"))
            assert listed.json()[0] == entry
            # A read change through the first replica: the count on the second follows.
            marked = await http.patch(
                f"{first}/api/v1/users/alice/inbox/{entry['id']}",
                json={"read": True},
                headers=auth("alice"),
            )
            assert marked.status_code == 200
            assert (await s.reader.next("count")).json() == {"unread": start}
            # Heartbeats as comments.
            assert (await s.reader.next("comment")).comment == "ping"
        services_ = second_app.state.services
        await eventually(lambda: services_.inbox_events.hub.open_streams == 0)


async def test_a_reconnect_with_last_event_id_gets_what_it_missed(
    replicas: list[tuple[str, FastAPI]], sender: Settings, auth: Any
) -> None:
    (first, _), (second, _) = replicas
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{first}/api/v1/users/me", headers=auth("bob"))).is_success
        async with stream(http, f"{first}/api/v1/users/bob/inbox/stream", auth("bob")) as s:
            await notify(sender, "bob")
            seen = await next_notification(s)
        # While no stream is open, three more arrive.
        missed = await notify(sender, "bob", 3)

        async def stored() -> bool:
            response = await http.get(f"{first}/api/v1/users/bob/inbox", headers=auth("bob"))
            return {e["message_id"] for e in response.json()} >= set(missed)

        await eventually(stored)
        headers = {**auth("bob"), "Last-Event-ID": str(seen["id"])}
        async with stream(http, f"{second}/api/v1/users/bob/inbox/stream", headers) as s:
            resumed = [await next_notification(s) for _ in missed]
            assert [e["message_id"] for e in resumed] == missed
            assert [e["id"] for e in resumed] == sorted(e["id"] for e in resumed)
            assert min(e["id"] for e in resumed) > seen["id"]
            # Then live ones.
            [live] = await notify(sender, "bob")
            assert (await next_notification(s))["message_id"] == live


async def test_someone_elses_stream_is_refused(
    replicas: list[tuple[str, FastAPI]], auth: Any
) -> None:
    (first, _), _ = replicas
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{first}/api/v1/users/alice/inbox/stream", headers=auth("bob"))
        assert response.status_code == 403
        response = await http.get(f"{first}/api/v1/users/alice/inbox/stream")
        assert response.status_code == 401

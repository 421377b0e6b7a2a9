"""API test fixtures: a real OIDC provider with test users, the app on the test's PostgreSQL
transaction, real Redis, a real RabbitMQ vhost, and a local directory with the same users."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aio_pika
import httpx
import pytest
import redis.asyncio as aioredis
import uvicorn
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from fmn.api.app import create_app
from fmn.core.settings import Settings
from fmn.db import migrations
from fmn.directory.local import DirectoryData, LocalDirectory
from tests.harness import services
from tests.harness.oidc import CLIENT_ID, CLIENT_SECRET, Provider
from tests.harness.ports import free_port
from tests.harness.signing import SIGNING_KEY, VAPID_KEY

ADMIN_GROUP = "fmn-admins"
# Identity provider accounts: username -> groups.
ACCOUNTS: dict[str, dict[str, Any]] = {
    "alice": {"groups": ["packager", "python-sig"]},
    "bob": {"groups": ["packager"]},
    "root": {"groups": [ADMIN_GROUP, "packager"]},
    "newbie": {"groups": []},
    "noemail": {"groups": []},
    "ghost": {"groups": []},  # in the identity provider, not in the directory
}
ALICE_EMAIL = "alice@example.org"
DIRECTORY = {
    "users": {
        "alice": {
            "username": "alice",
            "emails": [ALICE_EMAIL, "Alice.Other@Example.com"],
            "ircnicks": [
                "alice_irc",
                "irc://irc.libera.chat/alice_libera",
                "matrix://matrix.org/alice",
                "matrix:///alice_fed",
                "https://example.org/not-a-chat",
            ],
        },
        "bob": {"username": "bob", "emails": ["bob@example.org"], "ircnicks": ["bob"]},
        "root": {"username": "root", "emails": ["root@example.org"]},
        "newbie": {"username": "newbie", "emails": ["newbie@example.org", "n2@example.org"]},
        "noemail": {"username": "noemail", "emails": []},
    },
    "groups": {
        "packager": {"members": ["alice", "bob", "root"]},
        "python-sig": {"members": ["alice"], "sponsors": []},
        ADMIN_GROUP: {"members": ["root"]},
    },
    "projects": {
        "rpms/python-foo": {"access_users": {"owner": ["alice"]}},
        "rpms/bar": {
            "access_users": {"owner": ["bob"]},
            "access_groups": {"commit": ["python-sig"]},
        },
        "containers/foo": {"access_users": {"admin": ["alice"]}},
        "rpms/baz": {"access_users": {"ticket": ["alice"]}},
    },
}


@pytest.fixture(scope="session")
def oidc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    provider = Provider(ACCOUNTS, tmp_path_factory.mktemp("oidc"))
    provider.start()
    yield provider
    provider.stop()


@pytest.fixture(scope="session")
def tokens(oidc: Provider) -> dict[str, str]:
    return {name: oidc.token(name) for name in ACCOUNTS}


async def _declare_sink(url: str) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue("api-tests-sink", durable=False, arguments=None)
        await queue.bind("amq.topic", "#")


@pytest.fixture(scope="session")
def bus_url(amqp_url: str) -> str:
    """The test vhost, with a queue taking every topic so announcements are routable (a bus
    without consumers refuses them, and the API would retry)."""
    asyncio.run(_declare_sink(amqp_url))
    return amqp_url


@pytest.fixture
def api_settings(pg_url: str, redis_url: str, oidc: Provider, bus_url: str) -> Settings:
    return Settings(
        public_url="https://notifications.example.org",
        database={"url": pg_url},
        cache={"url": redis_url},
        bus={"amqp_url": bus_url, "topic_prefix": "org.example.test"},
        send_queue={"amqp_url": bus_url, "exchange": "fmn.send.apitests", "retry_delays": [60]},
        oidc={
            "provider_url": oidc.issuer,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "allowed_clients": [CLIENT_ID],
            "token_check": "both",
            "admin_groups": [ADMIN_GROUP],
            "userinfo_username_claim": "preferred_username",
        },
        api={
            "secret_keys": [SIGNING_KEY],
            "announce_retry_delays": [0.05, 0.1],
            "rate_limit_per_minute": 1000,
            # Previews count every step against the budget: a loaded test machine must not cut
            # the ones that check what a preview finds (budget tests set their own).
            "preview_time_budget": 30.0,
            "frontend_dir": "/nonexistent",
        },
        web={"vapid_private_key": VAPID_KEY, "push_allow_http": True},
    )


@pytest.fixture(scope="module")
def live_api(oidc: Provider, bus_url: str) -> Iterator[str]:
    """The API served for real (uvicorn in a thread, its own engine on a database of its own,
    Redis, RabbitMQ, the real OIDC provider), for the schemathesis runs; its base URL."""
    name = f"{services.pg_database_name()}_schemathesis"
    url = services.recreate_database(name)
    migrations.upgrade(url)
    api_settings = Settings(
        database={"url": url, "pool_size": 4},
        cache={"url": services.redis_url()},
        bus={"amqp_url": bus_url},
        send_queue={"amqp_url": bus_url, "exchange": "fmn.send.schemathesis"},
        oidc={
            "provider_url": oidc.issuer,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "token_check": "introspection",
            "admin_groups": [ADMIN_GROUP],
            "allowed_clients": [CLIENT_ID],
            "token_checks_per_minute": 100_000,
        },
        api={
            "rate_limit_per_minute": 100_000,
            "frontend_dir": "/nonexistent",
            "secret_keys": [SIGNING_KEY],
        },
    )
    with serve_api(api_settings) as (base, _app):
        yield base
    services.drop_database(name)


@contextlib.contextmanager
def serve_api(settings: Settings) -> Iterator[tuple[str, FastAPI]]:
    """The API served for real by uvicorn in a thread (its own event loop), with the test
    directory: its base URL and the app."""
    directory = LocalDirectory(DirectoryData.model_validate(DIRECTORY))
    app = create_app(settings, directory=directory)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture
def directory() -> LocalDirectory:
    return LocalDirectory(DirectoryData.model_validate(json.loads(json.dumps(DIRECTORY))))


def sessionmaker_on(connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    """Sessions whose commits are savepoints of the test's transaction."""
    return async_sessionmaker(
        bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )


@pytest.fixture
async def make_app(
    api_settings: Settings,
    db_connection: AsyncConnection,
    directory: LocalDirectory,
    redis_client: aioredis.Redis,
) -> AsyncIterator[Any]:
    """Build and start an app (settings may be changed first); stopped at the end."""
    started: list[Any] = []

    async def make(settings: Settings | None = None, **overrides: Any) -> FastAPI:
        app = create_app(
            settings or api_settings,
            sessionmaker=sessionmaker_on(db_connection),
            directory=overrides.pop("directory", directory),
            **overrides,
        )
        context = app.router.lifespan_context(app)
        await context.__aenter__()
        started.append(context)
        return app

    yield make
    for context in reversed(started):
        await context.__aexit__(None, None, None)


@pytest.fixture
async def app(make_app: Any) -> FastAPI:
    built: FastAPI = await make_app()
    return built


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@pytest.fixture
def auth(tokens: dict[str, str]) -> Any:
    def headers(username: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[username]}"} if username else {}

    return headers


@pytest.fixture
async def session(db_connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    """A session of the test's own, to arrange and to check the database."""
    async with sessionmaker_on(db_connection)() as s:
        yield s


class BusListener:
    """An exclusive queue on the test vhost, bound to the rule topics."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.messages: asyncio.Queue[aio_pika.abc.AbstractIncomingMessage] = asyncio.Queue()

    async def start(self) -> None:
        self.connection = await aio_pika.connect(self.url)
        channel = await self.connection.channel()
        queue = await channel.declare_queue("", exclusive=True)
        await queue.bind("amq.topic", "#.fmn.rule.#")
        await queue.consume(self.messages.put, no_ack=True)

    async def next(self, timeout: float = 5.0) -> aio_pika.abc.AbstractIncomingMessage:
        return await asyncio.wait_for(self.messages.get(), timeout)

    async def nothing(self, wait: float = 0.3) -> bool:
        await asyncio.sleep(wait)
        return self.messages.empty()

    async def close(self) -> None:
        await self.connection.close()


@pytest.fixture
async def bus(bus_url: str) -> AsyncIterator[BusListener]:
    listener = BusListener(bus_url)
    await listener.start()
    yield listener
    await listener.close()


def rule_body(
    address: str = ALICE_EMAIL, *, name: str = "my rule", tracking: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "name": name,
        "tracking_rule": tracking or {"name": "related-events", "params": None},
        "generation_rules": [
            {"destinations": [{"protocol": "email", "address": address}], "filters": {}}
        ],
    }

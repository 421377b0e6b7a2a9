"""Shared fixtures, and the split of the suite. Every test that touches the database runs inside
a transaction on a real PostgreSQL database that is rolled back at the end.

A test that needs a real service (PostgreSQL, Redis, RabbitMQ) or a server the harness starts
(tests/harness: the OIDC provider, SMTP, IRC, Matrix, the directory server) gets the `services`
marker, decided here: it asks for one of SERVICE_FIXTURES (directly or through another
fixture), or its module uses tests.harness itself. `pytest -m "not services"` runs the rest,
anywhere, in seconds; `pytest -m services` the others."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from fmn.core import settings as settings_module
from fmn.core.settings import Settings
from fmn.db import migrations
from tests.harness import directory_server as directory_harness
from tests.harness import services
from tests.harness.ports import free_port

CORPUS_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
DATA_DIR = Path(__file__).resolve().parent / "data"
DIRECTORY_SAMPLE = DATA_DIR / "directory-clients.json"


# The fixtures that reach a real service or start a server.
SERVICE_FIXTURES = frozenset(
    {
        "pg_url",
        "redis_url",
        "amqp_url",
        "consumer_db_url",
        "oidc",
        "smtp",
        "directory_server_url",
        "amqp_proxy",
    }
)


def _uses_harness(module: object) -> bool:
    for value in vars(module).values():
        name = getattr(value, "__module__", None) or getattr(value, "__name__", "")
        if isinstance(name, str) and name.startswith("tests.harness.") and name != PORTS:
            return True
    return False


PORTS = "tests.harness.ports"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    harness_modules: dict[str, bool] = {}
    for item in items:
        module = getattr(item, "module", None)
        uses_harness = False
        if module is not None:
            if module.__name__ not in harness_modules:
                harness_modules[module.__name__] = _uses_harness(module)
            uses_harness = harness_modules[module.__name__]
        fixtures = set(getattr(item, "fixturenames", ()))
        if uses_harness or fixtures & SERVICE_FIXTURES:
            item.add_marker(pytest.mark.services)


def pytest_sessionstart(session: pytest.Session) -> None:
    if not CORPUS_DIR.is_dir():
        pytest.exit(
            f"the corpus of real bus messages is missing: expected {CORPUS_DIR} "
            "(the shared/ folder beside this checkout)",
            returncode=1,
        )


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A migrated PostgreSQL database for this worker."""
    name = services.pg_database_name()
    url = services.recreate_database(name)
    migrations.upgrade(url)
    yield url
    services.drop_database(name)


@pytest.fixture
async def db_connection(pg_url: str) -> AsyncIterator[AsyncConnection]:
    engine = create_async_engine(pg_url, poolclass=NullPool)
    async with engine.connect() as conn:
        transaction = await conn.begin()
        yield conn
        await transaction.rollback()
    await engine.dispose()


@pytest.fixture
async def db_session(db_connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    """A session whose commits become savepoints of the test's transaction."""
    session = AsyncSession(
        bind=db_connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )
    yield session
    await session.close()


@pytest.fixture
def redis_url() -> str:
    return services.redis_url()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    """A RabbitMQ vhost for this test run, deleted afterwards."""
    name, url = services.create_vhost()
    yield url
    services.delete_vhost(name)


@pytest.fixture
def settings(pg_url: str, redis_url: str, tmp_path: Path) -> Iterator[Settings]:
    """Settings pointing at the real test services."""
    cfg = Settings(
        database={"url": pg_url},
        cache={"url": redis_url},
    )
    settings_module.get_settings.cache_clear()
    yield cfg
    settings_module.get_settings.cache_clear()


def load_corpus(filename: str) -> list[dict[str, Any]]:
    with (CORPUS_DIR / filename).open() as fh:
        return [json.loads(line) for line in fh if line.strip()]


@pytest.fixture(scope="session")
def corpus() -> dict[str, list[dict[str, Any]]]:
    """Real Fedora bus messages, by file name."""
    return {path.name: load_corpus(path.name) for path in sorted(CORPUS_DIR.glob("*.jsonl"))}


@pytest.fixture(scope="session")
def directory_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The test directory server (FASJSON and dist-git over HTTP) in its own process."""
    port = free_port()
    log = tmp_path_factory.mktemp("directory-server") / "server.log"
    process = directory_harness.start(DIRECTORY_SAMPLE, port, log)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def directory_server(directory_server_url: str) -> Iterator[directory_harness.RunningServer]:
    """The server, back to the sample data, no fault armed, counters at zero. A fault a test
    armed and did not use up is disarmed after it too: tests that take only the URL share the
    server."""
    server = directory_harness.RunningServer(directory_server_url)
    server.heal()
    server.load(json.loads(DIRECTORY_SAMPLE.read_text()))
    server.reset_stats()
    yield server
    server.heal()

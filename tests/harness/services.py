"""Real services for the tests: a PostgreSQL database, a Redis database and a RabbitMQ vhost per
pytest-xdist worker, so workers never see each other's data."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid

import asyncpg

PG_ADMIN_DSN = os.environ.get("FMN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_HOST = os.environ.get("FMN_TEST_REDIS", "redis://127.0.0.1:6379")
AMQP_HOST = os.environ.get("FMN_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672")


def worker_id() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "gw0")


# Unique to this test run (shared by its xdist workers), so two runs on one machine never drop
# each other's databases or vhosts.
_RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID") or uuid.uuid4().hex
RUN_ID = _RUN[:8]


def worker_number() -> int:
    digits = "".join(c for c in worker_id() if c.isdigit())
    return int(digits or 0)


def pg_database_name() -> str:
    return f"fmn_test_{RUN_ID}_{worker_id()}"


async def _recreate_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def recreate_database(name: str) -> str:
    """Create an empty database and return its SQLAlchemy URL."""
    asyncio.run(_recreate_database(name))
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}"


def drop_database(name: str) -> None:
    asyncio.run(_drop_database(name))


def redis_url() -> str:
    # Database 0 is left to humans; workers use 1..15.
    return f"{REDIS_HOST}/{1 + worker_number() % 15}"


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def create_vhost() -> tuple[str, str]:
    """A fresh RabbitMQ vhost; returns (name, AMQP URL)."""
    name = f"fmn-test-{worker_id()}-{uuid.uuid4().hex[:8]}"
    rabbitmqctl("add_vhost", name)
    rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    return name, f"{AMQP_HOST}/{name}"


def delete_vhost(name: str) -> None:
    rabbitmqctl("delete_vhost", name)

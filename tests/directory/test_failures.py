"""A look-up that fails is retried, then raises DirectoryUnavailable: never an empty answer
(FMN 3 #1064, where a failing look-up meant "not owned" for 8 hours)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from cashews import Cache

from fmn.directory.base import DirectoryUnavailable
from fmn.directory.cache import CachedDirectory
from fmn.directory.factory import make_remote_directory
from fmn.directory.remote import RemoteDirectory
from tests.directory.conftest import client_settings
from tests.harness.directory_server import RunningServer
from tests.harness.ports import free_port

LOOKUPS = [
    ("get_user", "alice"),
    ("get_user_groups", "alice"),
    ("get_group_members", "packagers"),
    ("search_users", "alice"),
    ("get_project_users", "rpms/firefox"),
    ("get_project_groups", "rpms/firefox"),
    ("get_user_projects", "alice"),
    ("get_group_projects", "python-sig"),
    ("search_projects", "fire*"),
]


@pytest.mark.parametrize(("lookup", "argument"), LOOKUPS)
async def test_server_errors_raise_after_the_retries(
    remote: RemoteDirectory, directory_server: RunningServer, lookup: str, argument: str
) -> None:
    directory_server.fail(count=100, status=500)
    with pytest.raises(DirectoryUnavailable):
        await getattr(remote, lookup)(argument)
    # retries=2: the first request and two more, then it gives up.
    assert directory_server.stats() == {"requests": 3, "faults": 3}


async def test_a_passing_fault_is_ridden_out(
    remote: RemoteDirectory, directory_server: RunningServer
) -> None:
    directory_server.fail(count=2, status=503)
    assert await remote.get_project_users("rpms/firefox") == ["alice", "bob"]
    assert directory_server.stats() == {"requests": 3, "faults": 2}


async def test_a_fault_in_the_middle_of_pagination_is_not_a_short_list(
    remote: RemoteDirectory, directory_server: RunningServer
) -> None:
    projects = {f"rpms/pkg{i:03d}": {"access_users": {"owner": ["alice"]}} for i in range(150)}
    directory_server.load({"users": {"alice": {}}, "projects": projects})
    # The first page (100 projects) is served, then the server breaks down.
    directory_server.fail(after=1, seconds=60, status=502)
    with pytest.raises(DirectoryUnavailable):
        await remote.get_user_projects("alice")
    assert directory_server.stats() == {"requests": 4, "faults": 3}
    directory_server.heal()
    assert await remote.get_user_projects("alice") == sorted(projects)


async def test_refused_requests_are_not_retried(
    remote: RemoteDirectory, directory_server: RunningServer
) -> None:
    # A 403 (say, Kerberos refused) is no answer either, and trying again cannot help.
    directory_server.fail(count=100, status=403)
    with pytest.raises(DirectoryUnavailable, match="403"):
        await remote.get_user_groups("alice")
    assert directory_server.stats()["requests"] == 1


async def test_nobody_listening_raises() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    directory = make_remote_directory(client_settings(url, retries=1), backoff=0.01)
    try:
        with pytest.raises(DirectoryUnavailable):
            await directory.get_project_users("rpms/firefox")
    finally:
        await directory.aclose()


@pytest.fixture
async def silent_server() -> AsyncIterator[str]:
    """Accepts connections and never answers."""
    connections: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    for writer in connections:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_a_server_that_hangs_times_out(silent_server: str) -> None:
    settings = client_settings(silent_server, retries=1, timeout=0.2)
    directory = make_remote_directory(settings, backoff=0.01)
    try:
        with pytest.raises(DirectoryUnavailable, match="Timeout"):
            await directory.get_user("alice")
    finally:
        await directory.aclose()


async def test_failures_are_not_cached(
    remote: RemoteDirectory, directory_server: RunningServer
) -> None:
    cache = Cache()
    cache.setup("mem://")
    cached = CachedDirectory(remote, cache, ttl=60)
    directory_server.fail(count=100)
    with pytest.raises(DirectoryUnavailable):
        await cached.get_project_users("rpms/firefox")
    directory_server.heal()
    assert await cached.get_project_users("rpms/firefox") == ["alice", "bob"]

"""CachedDirectory on the real Redis, over the real clients and server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from fmn.directory.cache import CachedDirectory, make_cache
from fmn.directory.changes import DirectoryChange
from fmn.directory.factory import invalidate_on_message
from fmn.directory.remote import RemoteDirectory
from tests.directory.conftest import sample_data
from tests.harness.directory_server import RunningServer

PROD = "org.fedoraproject.prod."
# Where the Pagure corpus messages say their projects live.
CORPUS_DISTGIT = "http://localhost.localdomain"

CachedFactory = Callable[..., CachedDirectory]


@pytest.fixture
async def make_cached(
    remote: RemoteDirectory, redis_url: str, redis_client: aioredis.Redis
) -> AsyncIterator[CachedFactory]:
    """CachedDirectories on this worker's Redis database (emptied by `redis_client`)."""
    made: list[CachedDirectory] = []

    def make(ttl: int = 60, distgit_url: str | None = CORPUS_DISTGIT) -> CachedDirectory:
        cached = CachedDirectory(remote, make_cache(redis_url), ttl=ttl, distgit_url=distgit_url)
        made.append(cached)
        return cached

    yield make
    for cached in made:
        await cached.cache.close()


def corpus_message(corpus: dict[str, list[dict[str, Any]]], filename: str, topic: str) -> Any:
    return next(m for m in corpus[filename] if m["topic"] == topic)


async def test_a_hit_asks_nobody(
    make_cached: CachedFactory, directory_server: RunningServer, redis_client: aioredis.Redis
) -> None:
    cached = make_cached()
    assert await cached.get_project_users("rpms/firefox") == ["alice", "bob"]
    assert directory_server.stats()["requests"] == 1
    assert await redis_client.exists(cached.key("get_project_users", "rpms/firefox"))

    directory_server.fail(count=100)  # a hit must not even notice
    assert await cached.get_project_users("rpms/firefox") == ["alice", "bob"]
    assert directory_server.stats()["requests"] == 1


async def test_absent_users_are_cached_too(
    make_cached: CachedFactory, directory_server: RunningServer
) -> None:
    cached = make_cached()
    assert await cached.get_user("nobody") is None
    assert await cached.get_user("nobody") is None
    assert directory_server.stats()["requests"] == 1


async def test_entries_expire_after_the_ttl(
    make_cached: CachedFactory, directory_server: RunningServer, redis_client: aioredis.Redis
) -> None:
    cached = make_cached(ttl=1)
    await cached.get_user_groups("alice")
    assert 0 < await redis_client.ttl(cached.key("get_user_groups", "alice")) <= 1
    await asyncio.sleep(1.2)
    await cached.get_user_groups("alice")
    assert directory_server.stats()["requests"] == 2


async def test_the_cache_is_shared_between_processes(
    make_cached: CachedFactory, directory_server: RunningServer
) -> None:
    consumer, api = make_cached(), make_cached()
    await consumer.get_group_projects("python-sig")
    requests = directory_server.stats()["requests"]
    assert await api.get_group_projects("python-sig") == ["rpms/firefox", "rpms/python-requests"]
    assert directory_server.stats()["requests"] == requests


async def test_concurrent_lookups_share_one_request(
    make_cached: CachedFactory, directory_server: RunningServer
) -> None:
    cached = make_cached()
    answers = await asyncio.gather(*(cached.get_user("alice") for _ in range(20)))
    assert all(a is not None and a["username"] == "alice" for a in answers)
    assert directory_server.stats()["requests"] == 1


async def test_a_corpus_pagure_message_invalidates_its_project_and_user(
    make_cached: CachedFactory,
    directory_server: RunningServer,
    corpus: dict[str, list[dict[str, Any]]],
) -> None:
    consumer, api = make_cached(), make_cached()
    path = "fedora-infra/fedocal-messages"
    assert await api.get_project_users(path) == ["dummy", "pingou"]
    assert await api.get_user_projects("dummy") == [path]

    # dist-git removes dummy, then tells the bus.
    data = sample_data()
    data["projects"][path]["access_users"]["commit"] = []
    directory_server.load(data)
    assert await api.get_project_users(path) == ["dummy", "pingou"]  # cached, stale

    message = corpus_message(
        corpus, "schema-tests-pagure-messages.jsonl", "pagure.project.user.removed"
    )
    change = await invalidate_on_message(consumer, PROD + message["topic"], message["body"])

    assert change == DirectoryChange(users=frozenset({"dummy"}), projects=frozenset({path}))
    assert await api.get_project_users(path) == ["pingou"]
    assert await api.get_user_projects("dummy") == []


async def test_messages_from_another_pagure_change_nothing(
    make_cached: CachedFactory,
    directory_server: RunningServer,
    corpus: dict[str, list[dict[str, Any]]],
) -> None:
    cached = make_cached(distgit_url="https://src.fedoraproject.org")
    path = "fedora-infra/fedocal-messages"
    await cached.get_project_users(path)
    message = corpus_message(
        corpus, "schema-tests-pagure-messages.jsonl", "pagure.project.user.access.updated"
    )
    change = await cached.invalidate_on_message(PROD + message["topic"], message["body"])
    assert not change
    await cached.get_project_users(path)
    assert directory_server.stats()["requests"] == 1


async def test_a_corpus_fas_message_invalidates_the_user(
    make_cached: CachedFactory,
    directory_server: RunningServer,
    corpus: dict[str, list[dict[str, Any]]],
) -> None:
    cached = make_cached()
    assert await cached.get_user_groups("testuser") == ["infra"]
    assert await cached.search_users("testu") == ["testuser"]

    data = sample_data()
    data["groups"]["packagers"]["members"].append("testuser")
    data["users"]["testuser2"] = {"username": "testuser2"}
    directory_server.load(data)

    message = corpus_message(corpus, "schema-tests-noggin-messages.jsonl", "fas.user.update")
    assert message["body"]["msg"]["user"] == "testuser"
    change = await cached.invalidate_on_message(PROD + message["topic"], message["body"])

    assert change == DirectoryChange(users=frozenset({"testuser"}))
    assert await cached.get_user_groups("testuser") == ["infra", "packagers"]
    assert await cached.search_users("testu") == ["testuser", "testuser2"]


async def test_a_sponsor_adding_a_member_invalidates_user_and_group(
    make_cached: CachedFactory, directory_server: RunningServer
) -> None:
    cached = make_cached()
    assert await cached.get_group_members("python-sig") == ["bob", "frank"]
    assert await cached.get_user_groups("erin") == []

    data = sample_data()
    data["groups"]["python-sig"]["members"].append("erin")
    directory_server.load(data)
    # noggin-messages' MemberSponsorV1 body.
    body = {"msg": {"agent": "bob", "user": "erin", "group": "python-sig"}}
    change = await cached.invalidate_on_message(PROD + "fas.group.member.sponsor", body)

    assert change == DirectoryChange(users=frozenset({"erin"}), groups=frozenset({"python-sig"}))
    assert await cached.get_group_members("python-sig") == ["bob", "erin", "frank"]
    assert await cached.get_user_groups("erin") == ["python-sig"]


async def test_forgetting_everything_asks_the_directory_again_and_leaves_other_keys(
    make_cached: CachedFactory, directory_server: RunningServer, redis_client: aioredis.Redis
) -> None:
    # A consumer back from a lost connection may have missed any change (finding 14,
    # reliability.md). The cache's Redis is shared: a sender's sent keys stay.
    cached = make_cached()
    assert await cached.get_group_members("python-sig") == ["bob", "frank"]
    assert await cached.search_users("testu") == ["testuser"]
    await redis_client.set("fmn:sent:some-notification", "1")
    data = sample_data()
    data["groups"]["python-sig"]["members"].append("erin")
    data["users"]["testuser2"] = {"username": "testuser2"}
    directory_server.load(data)

    await cached.invalidate_all()

    assert await cached.get_group_members("python-sig") == ["bob", "erin", "frank"]
    assert await cached.search_users("testu") == ["testuser", "testuser2"]
    assert await redis_client.get("fmn:sent:some-notification") == b"1"


class Gated:
    """Holds get_project_groups until released, to interleave a load and an invalidation."""

    def __init__(self, inner: RemoteDirectory) -> None:
        self.inner = inner
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def get_project_groups(self, path: str) -> list[str]:
        self.entered.set()
        await self.release.wait()
        return await self.inner.get_project_groups(path)


async def test_a_load_overlapping_an_invalidation_is_not_stored(
    remote: RemoteDirectory, redis_url: str, redis_client: aioredis.Redis
) -> None:
    gated = Gated(remote)
    cached = CachedDirectory(gated, make_cache(redis_url), ttl=60)  # type: ignore[arg-type]
    load = asyncio.ensure_future(cached.get_project_groups("rpms/kernel"))
    await gated.entered.wait()
    await cached.invalidate(DirectoryChange(projects=frozenset({"rpms/kernel"})))
    gated.release.set()
    assert await load == ["infra"]
    assert not await redis_client.exists(cached.key("get_project_groups", "rpms/kernel"))
    await cached.get_project_groups("rpms/kernel")
    assert await redis_client.exists(cached.key("get_project_groups", "rpms/kernel"))
    await cached.cache.close()

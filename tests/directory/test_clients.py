"""The FASJSON and dist-git clients against the test directory server, over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from fmn.directory.local import DirectoryData, LocalDirectory
from fmn.directory.remote import RemoteDirectory
from tests.directory.conftest import sample_data
from tests.harness.directory_server import RunningServer

# (look-up, argument) pairs covering owners, roles, groups, sponsors and absent names.
QUESTIONS = [
    ("get_user_groups", "alice"),
    ("get_user_groups", "carol"),
    ("get_user_groups", "nobody"),
    ("get_group_members", "packagers"),
    ("get_group_members", "infra"),
    ("get_group_members", "no-such-group"),
    ("search_users", "ali"),
    ("search_users", "*ing*"),
    ("search_users", "user"),
    ("get_project_users", "rpms/firefox"),
    ("get_project_users", "rpms/python-requests"),
    ("get_project_users", "rpms/no-such-package"),
    ("get_project_groups", "rpms/firefox"),
    ("get_project_groups", "rpms/python-requests"),
    ("get_project_groups", "rpms/kernel"),
    ("get_user_projects", "alice"),
    ("get_user_projects", "bob"),
    ("get_user_projects", "carol"),
    ("get_user_projects", "nobody"),
    ("get_group_projects", "python-sig"),
    ("get_group_projects", "infra"),
    ("get_group_projects", "no-such-group"),
    ("search_projects", "fire*"),
    ("search_projects", "kernel"),
    ("search_projects", "*o*"),
]


@pytest.mark.parametrize(("lookup", "argument"), QUESTIONS)
async def test_remote_answers_like_local(
    remote: RemoteDirectory, lookup: str, argument: str
) -> None:
    """Over HTTP, the clients give the in-memory directory's answers for the same data."""
    local = LocalDirectory(DirectoryData.model_validate(sample_data()))
    expected = await getattr(local, lookup)(argument)
    assert await getattr(remote, lookup)(argument) == expected


async def test_get_user(remote: RemoteDirectory) -> None:
    user = await remote.get_user("alice")
    assert user is not None
    assert user["username"] == "alice"
    assert user["emails"] == ["alice@example.org"]
    assert user["ircnicks"] == ["irc:/alice", "matrix://fedora.im/alice"]


async def test_unknown_user_is_none(remote: RemoteDirectory) -> None:
    assert await remote.get_user("nobody") is None


async def test_locked_user_is_not_an_active_user(
    remote: RemoteDirectory, directory_server: RunningServer
) -> None:
    data = sample_data()
    data["users"]["bob"]["locked"] = True
    directory_server.load(data)
    assert await remote.get_user("bob") is None
    assert "bob" not in await remote.search_users("bob")


async def test_user_projects_are_direct_roles_only(remote: RemoteDirectory) -> None:
    # frank reaches rpms/firefox and rpms/python-requests only through python-sig, and erin
    # has only the ticket role: Pagure's `username=` lists the first, neither owns anything.
    assert await remote.get_user_projects("frank") == []
    assert await remote.get_user_projects("erin") == []


async def test_group_projects_leave_the_ticket_role_out(remote: RemoteDirectory) -> None:
    # infra: collaborator on rpms/kernel, ticket only on rpms/python-requests.
    assert await remote.get_group_projects("infra") == ["rpms/kernel"]
    assert await remote.get_group_projects("python-sig") == [
        "rpms/firefox",
        "rpms/python-requests",
    ]


async def test_short_search_terms_find_nobody(
    remote: RemoteDirectory, directory_server: RunningServer
) -> None:
    # FASJSON refuses terms under 3 characters: no request, no match.
    assert await remote.search_users("al") == []
    assert await remote.search_users("*b*") == []
    assert directory_server.stats()["requests"] == 0


async def test_names_cannot_escape_their_path_segment(remote: RemoteDirectory) -> None:
    assert await remote.get_user("../v1/users/alice") is None
    assert await remote.get_user_groups("alice/../bob") == []


def _big_directory(size: int) -> dict[str, Any]:
    names = [f"user{i:04d}" for i in range(size)]
    return {
        "users": {n: {"username": n} for n in names},
        "groups": {"big": {"members": names, "sponsors": ["user0000"]}},
        "projects": {
            f"rpms/pkg{i:04d}": {
                "access_users": {"owner": ["user0000"], "commit": [names[i]]},
                "access_groups": {"commit": ["big"]},
            }
            for i in range(size)
        },
    }


async def test_pagination_reads_every_page(
    remote: RemoteDirectory, directory_server: RunningServer
) -> None:
    size = 250
    directory_server.load(_big_directory(size))
    paths = [f"rpms/pkg{i:04d}" for i in range(size)]

    assert len(await remote.get_group_members("big")) == size  # pages of 100
    assert await remote.get_user_projects("user0000") == paths  # pages of 100
    assert await remote.get_group_projects("big") == paths
    assert len(await remote.search_users("user")) == size  # pages of 40
    assert len(await remote.get_user_groups("user0001")) == 1
    # 3 member pages + 1 sponsors, 3 project pages, 3 + 1 group pages (commit, collaborator),
    # 7 search pages, 1 user-groups page.
    assert directory_server.stats()["requests"] == 4 + 3 + 4 + 7 + 1

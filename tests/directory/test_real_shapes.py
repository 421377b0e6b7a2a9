"""fmn's FASJSON and dist-git clients against responses in the real services' shapes (the
`{"result": ...}` envelope and page object of FASJSON, Pagure's project JSON and pagination,
their 404 bodies, redirects), replayed with respx. Where each shape comes from is in the data
files' provenance notes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from fmn.directory.fasjson import FasjsonClient
from fmn.directory.http_client import JSONClient
from fmn.directory.pagure import PagureClient

RECORDED = Path(__file__).resolve().parents[1] / "data" / "recorded"
FASJSON = "https://fasjson.fedoraproject.org"
DISTGIT = "https://src.fedoraproject.org"


def replay(router: respx.MockRouter, base: str, name: str) -> list[httpx.Request]:
    """Answer each recorded exchange (matched by path and page) and keep what was asked."""
    exchanges: list[dict[str, Any]] = json.loads((RECORDED / f"{name}.json").read_text())[
        "exchanges"
    ]
    asked: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        params = request.url.params
        for exchange in exchanges:
            if exchange["path"] != request.url.path:
                continue
            page_key = "page_number" if "page_number" in exchange else "page"
            if page_key in exchange and params.get(page_key) != str(exchange[page_key]):
                continue
            headers = {"Location": exchange["location"]} if "location" in exchange else None
            return httpx.Response(exchange["status"], json=exchange.get("json"), headers=headers)
        raise AssertionError(f"no recorded answer for {request.url}")

    router.route(host=httpx.URL(base).host).mock(side_effect=answer)
    return asked


@pytest.fixture
def router() -> respx.MockRouter:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


@pytest.fixture
async def fasjson() -> AsyncIterator[FasjsonClient]:
    client = FasjsonClient(JSONClient(FASJSON, retries=0), page_size=2)
    yield client
    await client.aclose()


@pytest.fixture
async def pagure() -> AsyncIterator[PagureClient]:
    client = PagureClient(JSONClient(DISTGIT, retries=0))
    yield client
    await client.aclose()


async def test_fasjson_user_and_missing_user(
    router: respx.MockRouter, fasjson: FasjsonClient
) -> None:
    replay(router, FASJSON, "fasjson")
    alice = await fasjson.get_user("alice")
    assert alice is not None
    assert alice["emails"] == ["alice@example.test", "alice@other.example"]
    assert alice["ircnicks"] == ["irc:/alice", "matrix://fedora.im/alice"]
    # FASJSON's 404 body ({"name", "message"}) means no such user, not an outage.
    assert await fasjson.get_user("nobody") is None
    assert await fasjson.get_user_groups("nobody") == []
    # A locked account is not an active user.
    assert await fasjson.get_user("locked-user") is None


async def test_fasjson_lists_across_pages(router: respx.MockRouter, fasjson: FasjsonClient) -> None:
    asked = replay(router, FASJSON, "fasjson")
    assert await fasjson.get_user_groups("alice") == ["infra", "packager", "python-sig"]
    # Members over three pages, plus the (unpaginated) sponsors.
    assert await fasjson.get_group_members("packager") == [
        "alice",
        "bob",
        "carol",
        "dave",
        "erin",
        "frank",
    ]
    member_pages = [r.url.params["page_number"] for r in asked if r.url.path.endswith("/members/")]
    assert member_pages == ["1", "2", "3"]  # stopped at total_pages, no page past the end
    assert await fasjson.get_group_members("no-such-group") == []


async def test_distgit_project_roles_and_missing_project(
    router: respx.MockRouter, pagure: PagureClient
) -> None:
    replay(router, DISTGIT, "pagure")
    # Owners are owner/admin/commit/collaborator; ticket is not ownership.
    assert await pagure.get_project_users("rpms/firefox") == ["alice", "bob", "carol", "dave"]
    assert await pagure.get_project_groups("rpms/firefox") == ["firefox-sig", "packager-sig"]
    # Pagure's 404 ({"error": "Project not found", "error_code": "ENOPROJECT"}).
    assert await pagure.get_project_users("rpms/no-such-package") == []


async def test_distgit_projects_across_pages(
    router: respx.MockRouter, pagure: PagureClient
) -> None:
    asked = replay(router, DISTGIT, "pagure")
    # Page 2 holds one of alice's; the group-only project is not hers.
    assert await pagure.get_user_projects("alice") == ["containers/firefox", "rpms/firefox"]
    assert [r.url.params["page"] for r in asked] == ["1", "2"]


async def test_redirects_are_followed(router: respx.MockRouter) -> None:
    """A service moved to https, or Werkzeug's 308 for a path without its trailing slash:
    the client follows, instead of calling the directory unavailable."""
    replay(router, FASJSON, "fasjson")
    router.get("http://src.fedoraproject.org/api/0/rpms/firefox").mock(
        return_value=httpx.Response(301, headers={"Location": f"{DISTGIT}/api/0/rpms/firefox"})
    )
    replay(router, DISTGIT, "pagure")
    moved = PagureClient(JSONClient("http://src.fedoraproject.org", retries=0))
    fas = JSONClient(FASJSON, retries=0)
    try:
        assert await moved.get_project_users("rpms/firefox") == ["alice", "bob", "carol", "dave"]
        # Werkzeug's strict slashes: /v1/users/alice answers 308 to /v1/users/alice/.
        doc = await fas.get("/v1/users/alice")
        assert doc["result"]["username"] == "alice"
    finally:
        await moved.aclose()
        await fas.aclose()

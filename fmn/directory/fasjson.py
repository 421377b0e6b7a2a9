"""The FASJSON client: users and groups from Fedora's account system (API v1).

FASJSON wraps every answer in ``{"result": ...}``; lists are paginated when ``page_size`` is
given, with a ``page`` object (``page_number``, ``total_pages``) beside the result. Production
FASJSON wants Kerberos: pass an ``httpx.Auth`` (httpx-gssapi's HTTPSPNEGOAuth), see
``default_fasjson_auth``.
"""

from __future__ import annotations

import fnmatch
import importlib
from typing import Any
from urllib.parse import quote

import httpx

from fmn.directory.base import DirectoryUnavailable
from fmn.directory.http_client import JSONClient

# FASJSON refuses search terms shorter than this, and search pages larger than SEARCH_PAGE_SIZE.
MIN_SEARCH_TERM = 3
SEARCH_PAGE_SIZE = 40
# A guard against a server whose pagination never ends.
MAX_PAGES = 1000


def default_fasjson_auth(url: str) -> httpx.Auth | None:
    """Kerberos (SPNEGO) for an https FASJSON when httpx-gssapi is installed, else nothing."""
    if not url.startswith("https://"):
        return None
    try:
        gssapi = importlib.import_module("httpx_gssapi")
    except ImportError:
        return None
    auth: httpx.Auth = gssapi.HTTPSPNEGOAuth()
    return auth


def _segment(name: str) -> str:
    # Names go into the path; never let one add path segments.
    return quote(name, safe="")


class FasjsonClient:
    def __init__(self, http: JSONClient, *, page_size: int = 100) -> None:
        self.http = http
        self.page_size = page_size

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _paginated(
        self, path: str, params: dict[str, Any] | None = None, *, page_size: int | None = None
    ) -> list[Any] | None:
        """Every item of a paginated list, or None if the list's owner does not exist."""
        items: list[Any] = []
        query = {**(params or {}), "page_size": page_size or self.page_size}
        for page_number in range(1, MAX_PAGES + 1):
            doc = await self.http.get(path, {**query, "page_number": page_number})
            if doc is None:
                return None
            items.extend(doc.get("result") or [])
            page = doc.get("page")
            if not page or page.get("page_number", page_number) >= page.get("total_pages", 0):
                return items
        raise DirectoryUnavailable(f"{path}: more than {MAX_PAGES} pages")

    async def get_user(self, username: str) -> dict[str, Any] | None:
        doc = await self.http.get(f"/v1/users/{_segment(username)}/")
        if doc is None:
            return None
        user: dict[str, Any] = doc["result"]
        # A locked account is no longer an active user (FMN 3 #826).
        return None if user.get("locked") else user

    async def get_user_groups(self, username: str) -> list[str]:
        groups = await self._paginated(f"/v1/users/{_segment(username)}/groups/")
        return sorted({g["groupname"] for g in groups or ()})

    async def get_group_members(self, group: str) -> list[str]:
        members = await self._paginated(f"/v1/groups/{_segment(group)}/members/")
        if members is None:
            return []
        # Sponsors are listed apart (not paginated); count them as members too.
        return sorted({m["username"] for m in members} | set(await self.get_group_sponsors(group)))

    async def get_group_sponsors(self, group: str) -> list[str]:
        sponsors = await self.http.get(f"/v1/groups/{_segment(group)}/sponsors/")
        return sorted({s["username"] for s in (sponsors or {}).get("result") or ()})

    async def search_users(self, pattern: str) -> list[str]:
        """FASJSON searches substrings; a `*` pattern is narrowed by its longest literal part
        and then matched here. Terms FASJSON would refuse (< 3 characters) match nobody."""
        term = max(pattern.split("*"), key=len)
        if len(term) < MIN_SEARCH_TERM:
            return []
        users = await self._paginated(
            "/v1/search/users/", {"username": term}, page_size=SEARCH_PAGE_SIZE
        )
        names = {u["username"] for u in users or ()}
        if "*" in pattern:
            names = {n for n in names if fnmatch.fnmatchcase(n.lower(), pattern.lower())}
        return sorted(names)

"""The dist-git (Pagure, API v0) client: who owns which project.

Lists are paginated with ``page``/``per_page`` (at most 100) and answered with a ``pagination``
object (``page``, ``pages``, ``next``) beside the payload key (``projects``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from fmn.directory.base import OWNER_GROUP_ROLES, OWNER_USER_ROLES, DirectoryUnavailable
from fmn.directory.http_client import JSONClient

PER_PAGE = 100
MAX_PAGES = 1000

# `acl=commit` answers projects where the group has commit or admin; collaborator is apart.
GROUP_OWNER_ACLS = ("commit", "collaborator")


def _project_path(path: str) -> str:
    return "/".join(quote(part, safe="") for part in path.split("/"))


def _names(access: dict[str, list[str]], roles: Iterable[str]) -> set[str]:
    return {name for role in roles for name in access.get(role) or ()}


class PagureClient:
    def __init__(self, http: JSONClient) -> None:
        self.http = http

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _paginated(self, path: str, params: dict[str, Any]) -> list[dict[str, Any]] | None:
        """Every project of a paginated answer, or None if the list's owner does not exist."""
        projects: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            doc = await self.http.get(path, {**params, "per_page": PER_PAGE, "page": page})
            if doc is None:
                return None
            projects.extend(doc.get("projects") or ())
            pagination = doc.get("pagination") or {}
            if page >= (pagination.get("pages") or 0):
                return projects
        raise DirectoryUnavailable(f"{path}: more than {MAX_PAGES} pages")

    async def _project(self, path: str) -> dict[str, Any]:
        doc = await self.http.get(f"/api/0/{_project_path(path)}")
        return doc or {}

    async def get_project_users(self, path: str) -> list[str]:
        project = await self._project(path)
        return sorted(_names(project.get("access_users") or {}, OWNER_USER_ROLES))

    async def get_project_groups(self, path: str) -> list[str]:
        project = await self._project(path)
        return sorted(_names(project.get("access_groups") or {}, OWNER_GROUP_ROLES))

    async def get_user_projects(self, username: str) -> list[str]:
        # `username=` also answers projects reached through a group and the ticket role, so
        # the full project JSON (short=false) is needed to keep the user's own roles only.
        params = {"username": username, "fork": "false", "short": "false"}
        projects = await self._paginated("/api/0/projects", params) or []
        return sorted(
            p["fullname"]
            for p in projects
            if username in _names(p.get("access_users") or {}, OWNER_USER_ROLES)
        )

    async def get_group_projects(self, group: str) -> list[str]:
        paths: set[str] = set()
        for acl in GROUP_OWNER_ACLS:
            params = {"projects": "1", "acl": acl}
            projects = await self._paginated(f"/api/0/group/{quote(group, safe='')}", params)
            if projects is None:
                return []
            paths.update(p["fullname"] for p in projects)
        return sorted(paths)

    async def search_projects(self, pattern: str) -> list[str]:
        params = {"pattern": pattern, "fork": "false", "short": "true"}
        projects = await self._paginated("/api/0/projects", params) or []
        return sorted({p["fullname"] for p in projects})

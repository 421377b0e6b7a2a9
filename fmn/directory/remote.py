"""FASJSON and dist-git together, as one Directory."""

from __future__ import annotations

from typing import Any

from fmn.directory.fasjson import FasjsonClient
from fmn.directory.pagure import PagureClient


class RemoteDirectory:
    """Users and groups from FASJSON, projects from dist-git."""

    def __init__(self, fasjson: FasjsonClient, pagure: PagureClient) -> None:
        self.fasjson = fasjson
        self.pagure = pagure

    async def aclose(self) -> None:
        await self.fasjson.aclose()
        await self.pagure.aclose()

    async def get_user(self, username: str) -> dict[str, Any] | None:
        return await self.fasjson.get_user(username)

    async def get_user_groups(self, username: str) -> list[str]:
        return await self.fasjson.get_user_groups(username)

    async def get_group_members(self, group: str) -> list[str]:
        return await self.fasjson.get_group_members(group)

    async def get_group_sponsors(self, group: str) -> list[str]:
        return await self.fasjson.get_group_sponsors(group)

    async def search_users(self, pattern: str) -> list[str]:
        return await self.fasjson.search_users(pattern)

    async def get_project_users(self, path: str) -> list[str]:
        return await self.pagure.get_project_users(path)

    async def get_project_groups(self, path: str) -> list[str]:
        return await self.pagure.get_project_groups(path)

    async def get_user_projects(self, username: str) -> list[str]:
        return await self.pagure.get_user_projects(username)

    async def get_group_projects(self, group: str) -> list[str]:
        return await self.pagure.get_group_projects(group)

    async def search_projects(self, pattern: str) -> list[str]:
        return await self.pagure.search_projects(pattern)

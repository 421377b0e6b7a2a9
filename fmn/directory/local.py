"""The local directory: users, groups and projects from a JSON file, answered in memory.

The file's format (also served over HTTP by the tests' directory server, in FASJSON's and Pagure's
own API shapes):

    {"users": {name: FASJSON user object (username, emails, ircnicks, ...)},
     "groups": {name: {"members": [...], "sponsors": [...]}},
     "projects": {"rpms/NAME": {"access_users": {"owner": [...], "admin": [...], "commit": [...],
                                                 "collaborator": [...], "ticket": [...]},
                                "access_groups": {"admin": [...], "commit": [...],
                                                  "collaborator": [...], "ticket": [...]}}}}
"""

from __future__ import annotations

import fnmatch
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from fmn.directory.base import OWNER_GROUP_ROLES, OWNER_USER_ROLES


class GroupData(BaseModel):
    model_config = ConfigDict(extra="allow")
    members: list[str] = Field(default_factory=list)
    sponsors: list[str] = Field(default_factory=list)


class ProjectData(BaseModel):
    model_config = ConfigDict(extra="allow")
    access_users: dict[str, list[str]] = Field(default_factory=dict)
    access_groups: dict[str, list[str]] = Field(default_factory=dict)


class DirectoryData(BaseModel):
    model_config = ConfigDict(extra="forbid")
    users: dict[str, dict[str, Any]] = Field(default_factory=dict)
    groups: dict[str, GroupData] = Field(default_factory=dict)
    projects: dict[str, ProjectData] = Field(default_factory=dict)

    @classmethod
    def from_file(cls, path: str | Path) -> DirectoryData:
        return cls.model_validate(json.loads(Path(path).read_text()))


class LocalDirectory:
    """A Directory answered from DirectoryData, with reverse maps built once."""

    def __init__(self, data: DirectoryData) -> None:
        self.data = data
        self._user_groups: dict[str, set[str]] = defaultdict(set)
        for group, info in data.groups.items():
            for member in {*info.members, *info.sponsors}:
                self._user_groups[member].add(group)
        self._user_projects: dict[str, set[str]] = defaultdict(set)
        self._group_projects: dict[str, set[str]] = defaultdict(set)
        for path, project in data.projects.items():
            for user in self._owners(project.access_users, OWNER_USER_ROLES):
                self._user_projects[user].add(path)
            for group in self._owners(project.access_groups, OWNER_GROUP_ROLES):
                self._group_projects[group].add(path)

    @classmethod
    def from_file(cls, path: str | Path) -> LocalDirectory:
        return cls(DirectoryData.from_file(path))

    @staticmethod
    def _owners(access: dict[str, list[str]], roles: tuple[str, ...]) -> list[str]:
        return sorted({name for role in roles for name in access.get(role, [])})

    async def get_user(self, username: str) -> dict[str, Any] | None:
        return self.data.users.get(username)

    async def get_user_groups(self, username: str) -> list[str]:
        return sorted(self._user_groups.get(username, ()))

    async def get_group_members(self, group: str) -> list[str]:
        info = self.data.groups.get(group)
        return sorted({*info.members, *info.sponsors}) if info else []

    async def get_group_sponsors(self, group: str) -> list[str]:
        info = self.data.groups.get(group)
        return sorted(info.sponsors) if info else []

    async def search_users(self, pattern: str) -> list[str]:
        pattern = pattern if "*" in pattern else f"*{pattern}*"
        return sorted(u for u in self.data.users if fnmatch.fnmatchcase(u, pattern))

    async def get_project_users(self, path: str) -> list[str]:
        project = self.data.projects.get(path)
        return self._owners(project.access_users, OWNER_USER_ROLES) if project else []

    async def get_project_groups(self, path: str) -> list[str]:
        project = self.data.projects.get(path)
        return self._owners(project.access_groups, OWNER_GROUP_ROLES) if project else []

    async def get_user_projects(self, username: str) -> list[str]:
        return sorted(self._user_projects.get(username, ()))

    async def get_group_projects(self, group: str) -> list[str]:
        return sorted(self._group_projects.get(group, ()))

    async def search_projects(self, pattern: str) -> list[str]:
        return sorted(
            path
            for path in self.data.projects
            if fnmatch.fnmatchcase(path.split("/", 1)[-1], pattern)
        )

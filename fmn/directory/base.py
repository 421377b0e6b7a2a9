"""What fmn needs from the account system (FASJSON) and from dist-git (Pagure).

Every implementation answers the same questions; the consumer's index, the API and `fmn match`
ask only these. A look-up that fails raises DirectoryUnavailable: the caller waits and retries,
it never takes a failure to mean "not owned" (FMN 3 #1064).
"""

from __future__ import annotations

from typing import Any, Protocol

# Roles that count as owning (reference §2.2, FMN 3's).
OWNER_USER_ROLES = ("owner", "admin", "commit", "collaborator")
OWNER_GROUP_ROLES = ("admin", "commit", "collaborator")


class DirectoryUnavailable(Exception):
    """A directory look-up kept failing; the message that needed it must wait."""


class Directory(Protocol):
    async def get_user(self, username: str) -> dict[str, Any] | None:
        """The FASJSON user object, or None if there is no such (active) user."""

    async def get_user_groups(self, username: str) -> list[str]:
        """Names of the groups the user is a member of."""

    async def get_group_members(self, group: str) -> list[str]:
        """Usernames of the group's members (sponsors included)."""

    async def get_group_sponsors(self, group: str) -> list[str]:
        """Usernames of the group's sponsors (they manage its team rules)."""

    async def search_users(self, pattern: str) -> list[str]:
        """Usernames matching a pattern (FASJSON search: `*` wildcards)."""

    async def get_project_users(self, path: str) -> list[str]:
        """Users owning a project ("rpms/foo"): roles owner, admin, commit, collaborator."""

    async def get_project_groups(self, path: str) -> list[str]:
        """Groups owning a project ("rpms/foo"): roles admin, commit, collaborator."""

    async def get_user_projects(self, username: str) -> list[str]:
        """Paths ("rpms/foo") of the projects the user owns directly."""

    async def get_group_projects(self, group: str) -> list[str]:
        """Paths ("rpms/foo") of the projects the group owns."""

    async def search_projects(self, pattern: str) -> list[str]:
        """Paths of projects whose name matches a glob pattern ("*foo*")."""

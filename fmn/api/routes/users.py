"""/users: who am I, user search, and the directory's view of a user (login required, rate
limited: these proxy the account system)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response

from fmn.api.deps import (
    CurrentUser,
    DirectoryDep,
    RateLimitedOwnerOrAdmin,
    RateLimitedUser,
    ServicesDep,
    SessionDep,
    SettingsDep,
    Username,
)
from fmn.api.destinations import user_destinations
from fmn.api.first_login import ensure_user
from fmn.api.pagination import PageDep, paginate_list
from fmn.api.schemas import UserPublic
from fmn.rules import schema

router = APIRouter(prefix="/users", tags=["users"])

Search = Annotated[
    str | None,
    Query(max_length=schema.MAX_NAME_LENGTH, pattern=r"^[^\x00-\x1f\x7f]*$"),
]


@router.get("/me", response_model=UserPublic)
async def get_me(identity: CurrentUser, session: SessionDep, services: ServicesDep) -> UserPublic:
    """The logged-in user (created, with the default rule, on first sight)."""
    user = await ensure_user(session, services.directory, services.announcer, identity.name)
    return UserPublic(id=user.id, name=user.name, is_admin=identity.is_admin)


@router.get("", response_model=list[str])
async def search_users(
    identity: RateLimitedUser,
    directory: DirectoryDep,
    page: PageDep,
    response: Response,
    search: Search = None,
) -> list[str]:
    """Usernames matching `search` (`*` wildcards); without it, just the logged-in user."""
    if not search:
        return paginate_list([identity.name], page, response)
    return paginate_list(await directory.search_users(search), page, response)


async def _directory_user(directory: DirectoryDep, username: str) -> dict[str, Any]:
    user = await directory.get_user(username)
    if user is None:
        raise HTTPException(404, f"No user {username}")
    return user


@router.get("/{username}/info", response_model=dict[str, Any])
async def get_user_info(
    username: Username, _identity: RateLimitedOwnerOrAdmin, directory: DirectoryDep
) -> dict[str, Any]:
    """The user's directory entry, as FASJSON returns it (yourself, or an admin)."""
    return await _directory_user(directory, username)


@router.get("/{username}/groups", response_model=list[str])
async def get_user_groups(
    username: Username,
    _identity: RateLimitedUser,
    directory: DirectoryDep,
    page: PageDep,
    response: Response,
) -> list[str]:
    """The groups the user belongs to (public in the account system)."""
    await _directory_user(directory, username)
    return paginate_list(await directory.get_user_groups(username), page, response)


@router.get("/{username}/destinations", response_model=list[schema.Destination])
async def get_user_destinations(
    username: Username,
    _identity: RateLimitedOwnerOrAdmin,
    directory: DirectoryDep,
    settings: SettingsDep,
    page: PageDep,
    response: Response,
) -> list[schema.Destination]:
    """The addresses rules of this user may send to: emails, IRC nicks, Matrix ids, and the
    web inbox."""
    user = await _directory_user(directory, username)
    found = user_destinations(username, user, settings.directory.default_matrix_server)
    return paginate_list(found, page, response)

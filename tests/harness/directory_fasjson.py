"""The FASJSON v1 subset the test directory server answers, in FASJSON's shapes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

if TYPE_CHECKING:
    from tests.harness.directory_server import ServerState

MIN_SEARCH_TERM = 3
MAX_SEARCH_PAGE_SIZE = 40


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"message": message, **extra}, status_code=status)


def _int_arg(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    return int(value) if value not in (None, "") else None


def paged(request: Request, items: list[Any], *, page_size: int | None = None) -> JSONResponse:
    """FASJSON's envelope: everything at once, or one page and a `page` object when asked."""
    size = _int_arg(request, "page_size") or page_size
    if not size:
        return JSONResponse({"result": items})
    number = _int_arg(request, "page_number") or 1
    total_pages = -(-len(items) // size)
    page: dict[str, Any] = {
        "total_results": len(items),
        "page_size": size,
        "page_number": number,
        "total_pages": total_pages,
    }
    if number < total_pages:
        page["next_page"] = str(
            request.url.include_query_params(page_size=size, page_number=number + 1)
        )
    return JSONResponse({"result": items[(number - 1) * size : number * size], "page": page})


def _user_uri(request: Request, username: str) -> str:
    return str(request.url_for("fasjson_user", username=username))


def routes(state: ServerState) -> list[Route]:
    def user_object(request: Request, username: str) -> dict[str, Any]:
        user = {"username": username, "locked": False, **state.data.users[username]}
        return {**user, "uri": _user_uri(request, username)}

    async def get_user(request: Request) -> JSONResponse:
        username = request.path_params["username"]
        if username not in state.data.users:
            return _error(404, "User not found", name=username)
        return JSONResponse({"result": user_object(request, username)})

    async def get_user_groups(request: Request) -> JSONResponse:
        username = request.path_params["username"]
        if username not in state.data.users:
            return _error(404, "User does not exist", name=username)
        groups = await state.local.get_user_groups(username)
        items = [
            {"groupname": g, "uri": str(request.url_for("fasjson_group", group=g))} for g in groups
        ]
        return paged(request, items)

    async def get_group(request: Request) -> JSONResponse:
        name = request.path_params["group"]
        if name not in state.data.groups:
            return _error(404, "Group not found", groupname=name)
        uri = str(request.url_for("fasjson_group", group=name))
        return JSONResponse({"result": {"groupname": name, "uri": uri}})

    async def get_group_members(request: Request) -> JSONResponse:
        group = state.data.groups.get(request.path_params["group"])
        if group is None:
            return _error(404, "Group not found", groupname=request.path_params["group"])
        items = [{"username": u, "uri": _user_uri(request, u)} for u in sorted(group.members)]
        return paged(request, items)

    async def get_group_sponsors(request: Request) -> JSONResponse:
        group = state.data.groups.get(request.path_params["group"])
        if group is None:
            return _error(404, "Group not found", groupname=request.path_params["group"])
        items = [{"username": u, "uri": _user_uri(request, u)} for u in sorted(group.sponsors)]
        return JSONResponse({"result": items})

    async def search_users(request: Request) -> JSONResponse:
        term = request.query_params.get("username", "")
        size = _int_arg(request, "page_size") or MAX_SEARCH_PAGE_SIZE
        if not 0 < size <= MAX_SEARCH_PAGE_SIZE:
            return _error(400, "Page size must be between 1 and 40 when searching.")
        if len(term) < MIN_SEARCH_TERM:
            return _error(400, "Search term must be at least 3 characters long.")
        # LDAP `uid=*term*`, active accounts only.
        found = sorted(
            name
            for name, user in state.data.users.items()
            if term.lower() in name.lower() and not user.get("locked")
        )
        return paged(request, [user_object(request, n) for n in found], page_size=size)

    return [
        Route("/v1/users/{username}/", get_user, name="fasjson_user"),
        Route("/v1/users/{username}/groups/", get_user_groups),
        Route("/v1/groups/{group}/", get_group, name="fasjson_group"),
        Route("/v1/groups/{group}/members/", get_group_members),
        Route("/v1/groups/{group}/sponsors/", get_group_sponsors),
        Route("/v1/search/users/", search_users),
    ]

"""The Pagure API v0 subset the test directory server answers, in Pagure's shapes."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from fmn.directory.local import ProjectData

if TYPE_CHECKING:
    from tests.harness.directory_server import ServerState

USER_ROLES = ("owner", "admin", "commit", "collaborator", "ticket")
GROUP_ROLES = ("admin", "commit", "collaborator", "ticket")
# The roles Pagure's `username=` filter follows, directly or through a group.
SEARCH_ROLES = ("admin", "commit", "collaborator")
# What Pagure's `acl=` argument of /group/<name> selects.
ACL_ROLES = {"ticket": ("admin", "commit", "ticket"), "commit": ("commit", "admin")}
DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100


def _error(status: int, message: str, code: str) -> JSONResponse:
    return JSONResponse({"error": message, "error_code": code}, status_code=status)


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "t", "y", "yes")


def _pattern(pattern: str) -> re.Pattern[str]:
    """Pagure's pattern: `*` is SQL's `%` under ILIKE (so `_` is any one character); no `*`
    means the exact name."""
    if "*" not in pattern:
        return re.compile(re.escape(pattern) + r"\Z")
    wildcards = {"*": ".*", "%": ".*", "_": "."}
    regex = "".join(wildcards.get(c) or re.escape(c) for c in pattern)
    return re.compile(regex + r"\Z", re.IGNORECASE)


def project_json(request: Request, path: str, project: ProjectData, *, short: bool) -> Any:
    namespace, _, name = path.rpartition("/")
    base = {"name": name, "namespace": namespace or None, "fullname": path}
    if short:
        return {**base, "description": getattr(project, "description", "")}
    owners: list[str | None] = [*project.access_users.get("owner", []), None]
    return {
        **base,
        "description": getattr(project, "description", ""),
        "full_url": f"{str(request.base_url).rstrip('/')}/{path}",
        "url_path": path,
        "parent": None,
        "user": {"name": owners[0]},
        "access_users": {r: sorted(project.access_users.get(r, [])) for r in USER_ROLES},
        "access_groups": {r: sorted(project.access_groups.get(r, [])) for r in GROUP_ROLES},
    }


def paginated(request: Request, key: str, items: list[Any], extra: dict[str, Any]) -> JSONResponse:
    page = int(request.query_params.get("page") or 1)
    per_page = int(request.query_params.get("per_page") or DEFAULT_PER_PAGE)
    if not 0 < per_page <= MAX_PER_PAGE:
        return _error(400, "Invalid or incomplete input submitted", "EINVALIDPERPAGEVALUE")
    pages = max(1, -(-len(items) // per_page))

    def link(number: int) -> str | None:
        if not 1 <= number <= pages:
            return None
        return str(request.url.include_query_params(page=number, per_page=per_page))

    pagination = {
        "page": page,
        "pages": pages,
        "per_page": per_page,
        "first": link(1),
        "last": link(pages),
        "next": link(page + 1),
        "prev": link(page - 1),
    }
    chunk = items[(page - 1) * per_page : page * per_page]
    return JSONResponse({**extra, key: chunk, f"total_{key}": len(items), "pagination": pagination})


def routes(state: ServerState) -> list[Route]:
    def reaches(username: str, groups: set[str], project: ProjectData) -> bool:
        """Pagure's `username=`: owner, a direct role, or a role of one of the user's groups."""
        access = project.access_users
        if username in access.get("owner", []):
            return True
        if any(username in access.get(role, []) for role in SEARCH_ROLES):
            return True
        return any(groups.intersection(project.access_groups.get(r, [])) for r in SEARCH_ROLES)

    async def list_projects(request: Request) -> JSONResponse:
        args = request.query_params
        username, pattern = args.get("username"), args.get("pattern")
        short = _true(args.get("short"))
        matching = sorted(state.data.projects.items(), key=lambda item: item[0].lower())
        if _true(args.get("fork")):
            matching = []  # the file holds no forks
        if username:
            groups = set(await state.local.get_user_groups(username))
            matching = [(p, data) for p, data in matching if reaches(username, groups, data)]
        if pattern:
            regex = _pattern(pattern)
            matching = [(p, d) for p, d in matching if regex.match(p.rpartition("/")[2])]
        items = [project_json(request, p, d, short=short) for p, d in matching]
        extra = {"args": {"username": username, "pattern": pattern, "short": short}}
        return paginated(request, "projects", items, extra)

    async def view_group(request: Request) -> JSONResponse:
        name = request.path_params["group"]
        group = state.data.groups.get(name)
        if group is None:
            return _error(404, "Group not found", "ENOGROUP")
        output = {
            "name": name,
            "display_name": name,
            "description": "",
            "group_type": "user",
            "members": sorted({*group.members, *group.sponsors}),
        }
        if not _true(request.query_params.get("projects")):
            return JSONResponse(output)
        acl = (request.query_params.get("acl") or "").strip().lower()
        roles = ACL_ROLES.get(acl, (acl,)) if acl else GROUP_ROLES
        items = [
            project_json(request, path, project, short=False)
            for path, project in sorted(state.data.projects.items())
            if any(name in project.access_groups.get(role, []) for role in roles)
        ]
        return paginated(request, "projects", items, output)

    async def view_project(request: Request) -> JSONResponse:
        path = request.path_params["path"].strip("/")
        project = state.data.projects.get(path)
        if project is None:
            return _error(404, "Project not found", "ENOPROJECT")
        return JSONResponse(project_json(request, path, project, short=False))

    return [
        Route("/api/0/projects", list_projects),
        Route("/api/0/group/{group}", view_group),
        Route("/api/0/{path:path}", view_project),
    ]

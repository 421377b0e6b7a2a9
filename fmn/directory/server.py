"""The local directory server: FASJSON's (/v1/...) and Pagure's (/api/0/...) HTTP APIs, the
subsets fmn uses, answered from a DirectoryData file, so the real HTTP clients run unchanged
against it (embedded default, tests).

With ``admin=True`` it also answers, for tests:

- ``POST /_admin/fault`` ``{"status": 500, "count": N}`` or ``{"status": 503, "seconds": S}``,
  optionally ``"after": K``: K requests later, the next N requests (or all requests for S
  seconds) get that status; ``DELETE`` disarms.
- ``GET /_admin/stats``: ``{"requests": n, "faults": n}`` (API requests served and failed);
  ``DELETE`` resets them.
- ``PUT /_admin/data``: a new DirectoryData document replaces the directory.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from fmn.directory import server_fasjson, server_pagure
from fmn.directory.local import DirectoryData, LocalDirectory

Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass
class FaultSwitch:
    """Makes the server fail on purpose: `after` requests served, the next `count` ones fail,
    or all of them until `until` (monotonic time)."""

    status: int = 500
    count: int = 0
    until: float = 0.0
    after: int = 0

    def trip(self) -> int | None:
        """The status to fail this request with, or None to serve it."""
        if self.after > 0:
            self.after -= 1
            return None
        if self.count > 0:
            self.count -= 1
            return self.status
        if time.monotonic() < self.until:
            return self.status
        return None


class ServerState:
    def __init__(self, data: DirectoryData) -> None:
        self.fault = FaultSwitch()
        self.requests = 0
        self.faults = 0
        self.load(data)

    def load(self, data: DirectoryData) -> None:
        self.data = data
        self.local = LocalDirectory(data)


def _guarded(state: ServerState, endpoint: Endpoint) -> Endpoint:
    async def guarded(request: Request) -> Response:
        state.requests += 1
        status = state.fault.trip()
        if status is not None:
            state.faults += 1
            return JSONResponse({"error": "fault injected"}, status_code=status)
        try:
            return await endpoint(request)
        except ValueError:
            return JSONResponse({"error": "Invalid input"}, status_code=400)

    return guarded


def _admin_routes(state: ServerState) -> list[BaseRoute]:
    async def fault(request: Request) -> Response:
        if request.method == "DELETE":
            state.fault = FaultSwitch()
        else:
            spec: dict[str, Any] = await request.json()
            seconds = float(spec.get("seconds", 0))
            state.fault = FaultSwitch(
                status=int(spec.get("status", 500)),
                count=int(spec.get("count", 0)),
                until=time.monotonic() + seconds if seconds else 0.0,
                after=int(spec.get("after", 0)),
            )
        return JSONResponse({"status": state.fault.status, "count": state.fault.count})

    async def stats(request: Request) -> Response:
        if request.method == "DELETE":
            state.requests = state.faults = 0
        return JSONResponse({"requests": state.requests, "faults": state.faults})

    async def data(request: Request) -> Response:
        state.load(DirectoryData.model_validate(await request.json()))
        return JSONResponse({"users": len(state.data.users), "projects": len(state.data.projects)})

    return [
        Route("/_admin/fault", fault, methods=["POST", "DELETE"]),
        Route("/_admin/stats", stats, methods=["GET", "DELETE"]),
        Route("/_admin/data", data, methods=["PUT"]),
    ]


def make_app(data: DirectoryData, *, admin: bool = False) -> Starlette:
    state = ServerState(data)
    api = [*server_fasjson.routes(state), *server_pagure.routes(state)]
    routes: list[BaseRoute] = [Route(r.path, _guarded(state, r.endpoint), name=r.name) for r in api]
    if admin:
        routes = [*_admin_routes(state), *routes]
    app = Starlette(routes=routes)
    app.state.directory = state
    return app


def app_from_file(path: str | Path, *, admin: bool = False) -> Starlette:
    return make_app(DirectoryData.from_file(path), admin=admin)

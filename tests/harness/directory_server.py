"""The test directory server: FASJSON's (/v1/...) and Pagure's (/api/0/...) HTTP APIs, the
subsets fmn uses, answered from a DirectoryData file, so the real HTTP clients run unchanged
against it (tests, the soak). Run it: ``python -m tests.harness.directory_server --file F
--port P`` from the repository's root; `RunningServer` drives a running one.

It also answers:

- ``POST /_admin/fault`` ``{"status": 500, "count": N}`` or ``{"status": 503, "seconds": S}``,
  optionally ``"after": K``: K requests later, the next N requests (or all requests for S
  seconds) get that status; ``DELETE`` disarms.
- ``GET /_admin/stats``: ``{"requests": n, "faults": n}`` (API requests served and failed);
  ``DELETE`` resets them.
- ``PUT /_admin/data``: a new DirectoryData document replaces the directory.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from fmn.directory.local import DirectoryData, LocalDirectory
from tests.harness import directory_fasjson, directory_pagure

ROOT = Path(__file__).resolve().parents[2]

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


def make_app(data: DirectoryData) -> Starlette:
    state = ServerState(data)
    api = [*directory_fasjson.routes(state), *directory_pagure.routes(state)]
    routes: list[BaseRoute] = [Route(r.path, _guarded(state, r.endpoint), name=r.name) for r in api]
    app = Starlette(routes=[*_admin_routes(state), *routes])
    app.state.directory = state
    return app


class RunningServer:
    """A handle on a running server and its /_admin endpoints."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _admin(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        response = httpx.request(method, f"{self.url}/_admin/{path}", json=body, timeout=10)
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer

    def fail(
        self, *, count: int = 0, seconds: float = 0, status: int = 500, after: int = 0
    ) -> None:
        spec = {"count": count, "seconds": seconds, "status": status, "after": after}
        self._admin("POST", "fault", spec)

    def heal(self) -> None:
        self._admin("DELETE", "fault")

    def load(self, data: dict[str, Any]) -> None:
        self._admin("PUT", "data", data)

    def stats(self) -> dict[str, Any]:
        return self._admin("GET", "stats")

    def reset_stats(self) -> None:
        self._admin("DELETE", "stats")


def command(path: Path, port: int, host: str = "127.0.0.1") -> list[str]:
    """The command line that serves `path` on `port` (run it with cwd=ROOT)."""
    return [sys.executable, "-m", "tests.harness.directory_server", "--file", str(path),
            "--host", host, "--port", str(port)]  # fmt: skip


def start(path: Path, port: int, log: Path, *, timeout: float = 120) -> subprocess.Popen[bytes]:
    """Serve `path` on `port` in a process of its own, once it answers."""
    url = f"http://127.0.0.1:{port}"
    with log.open("w") as output:
        process = subprocess.Popen(
            command(path, port), cwd=ROOT, stdout=output, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(f"{url}/_admin/stats", timeout=1).raise_for_status()
            return process
        except httpx.HTTPError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"directory server did not start:\n{log.read_text()}") from None
            time.sleep(0.1)


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="Serve FASJSON's and Pagure's APIs from a file.")
    parser.add_argument("--file", required=True, type=Path, help="a DIRECTORY.json file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default=8081, type=int)
    args = parser.parse_args(argv)
    try:
        data = DirectoryData.from_file(args.file)
    except (ValueError, OSError) as exc:
        sys.exit(f"{args.file}: {exc}")
    uvicorn.run(make_app(data), host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()

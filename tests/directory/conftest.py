"""The local directory server, run for real (`fmn directory serve` under uvicorn, in its own
process, on a free 127.0.0.1 port), and the HTTP clients pointed at it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fmn.core.settings import DirectorySettings
from fmn.directory.factory import make_remote_directory
from fmn.directory.remote import RemoteDirectory
from tests.conftest import DATA_DIR

SAMPLE = DATA_DIR / "directory-clients.json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def sample_data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SAMPLE.read_text())
    return data


class RunningServer:
    """A handle on the running server and its /_admin endpoints."""

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


def _fmn_command() -> list[str]:
    script = Path(sys.executable).parent / "fmn"
    return (
        [str(script)]
        if script.exists()
        else [sys.executable, "-c", "from fmn.cli import cli; cli()"]
    )


@pytest.fixture(scope="session")
def directory_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("directory-server") / "server.log"
    command = [*_fmn_command(), "directory", "serve", "--file", str(SAMPLE)]
    with log.open("w") as output:
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port), "--admin"],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    # Generous: a loaded CI machine can take a while to import and start it.
    deadline = time.monotonic() + 120
    while True:
        try:
            httpx.get(f"{url}/_admin/stats", timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"directory server did not start:\n{log.read_text()}") from None
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def directory_server(directory_server_url: str) -> RunningServer:
    """The server, back to the sample data, no fault armed, counters at zero."""
    server = RunningServer(directory_server_url)
    server.heal()
    server.load(sample_data())
    server.reset_stats()
    return server


def client_settings(url: str, **overrides: Any) -> DirectorySettings:
    return DirectorySettings(fasjson_url=url, distgit_url=url, **{"retries": 2, **overrides})


@pytest.fixture
async def remote(directory_server: RunningServer) -> AsyncIterator[RemoteDirectory]:
    directory = make_remote_directory(client_settings(directory_server.url), backoff=0.01)
    yield directory
    await directory.aclose()

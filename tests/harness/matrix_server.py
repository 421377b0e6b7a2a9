"""A real Matrix homeserver for the tests: Synapse (a dev dependency) on SQLite, offline, with
accounts made through the shared-secret registration API, and a reading client per recipient.

Run it alone to debug: python -m tests.harness.matrix_server
"""

from __future__ import annotations

import asyncio
import hmac
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import nio

from tests.harness.ports import free_port

SERVER_NAME = "fmn.test"
SHARED_SECRET = "fmn-test-registration-secret"
# httpx's 5 s default was not enough for a registration at load 30 (Synapse hashes a password).
HTTP_TIMEOUT = 60.0


def homeserver_yaml(d: Path, port: int) -> str:
    return f"""
server_name: "{SERVER_NAME}"
pid_file: "{d / "homeserver.pid"}"
listeners:
  - port: {port}
    bind_addresses: ["127.0.0.1"]
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false
database:
  name: sqlite3
  args:
    database: "{d / "homeserver.db"}"
log_config: "{d / "log.yaml"}"
media_store_path: "{d / "media"}"
signing_key_path: "{d / "signing.key"}"
registration_shared_secret: "{SHARED_SECRET}"
report_stats: false
trusted_key_servers: []
suppress_key_server_warning: true
federation_domain_whitelist: []
enable_metrics: false
url_preview_enabled: false
presence:
  enabled: false
rc_message:
  per_second: 1000
  burst_count: 1000
rc_registration:
  per_second: 1000
  burst_count: 1000
rc_login:
  address: {{per_second: 1000, burst_count: 1000}}
  account: {{per_second: 1000, burst_count: 1000}}
rc_joins:
  local: {{per_second: 1000, burst_count: 1000}}
rc_invites:
  per_room: {{per_second: 1000, burst_count: 1000}}
  per_user: {{per_second: 1000, burst_count: 1000}}
  per_issuer: {{per_second: 1000, burst_count: 1000}}
"""


def log_yaml(d: Path) -> str:
    # Each request the homeserver served goes to access.log: the tests count what a sender asked.
    return f"""
version: 1
formatters:
  precise: {{format: '%(asctime)s %(levelname)s %(name)s %(message)s'}}
handlers:
  console: {{class: logging.StreamHandler, formatter: precise}}
  access: {{class: logging.FileHandler, formatter: precise, filename: "{d / "access.log"}"}}
loggers:
  synapse.access.http: {{level: INFO, handlers: [access], propagate: false}}
root: {{level: WARNING, handlers: [console]}}
disable_existing_loggers: false
"""


@dataclass
class Account:
    user_id: str
    access_token: str


_FILTER = {"room": {"timeline": {"limit": 1000}}}


@dataclass
class MatrixReader:
    """A recipient's client: accepts invites and collects the messages it sees."""

    client: nio.AsyncClient
    messages: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (room, content)
    invites: list[str] = field(default_factory=list)
    _since: str | None = None
    _seen: set[str] = field(default_factory=set)

    async def poll(self) -> None:
        # A timeline long enough for everything sent since the last poll, even after a gap.
        response = await self.client.sync(timeout=0, since=self._since, sync_filter=_FILTER)
        if isinstance(response, nio.SyncError):
            raise RuntimeError(f"sync failed: {response}")
        self._since = response.next_batch
        for room_id in response.rooms.invite:
            self.invites.append(room_id)
            await self.client.join(room_id)
        for room_id, room in response.rooms.join.items():
            for event in room.timeline.events:
                if event.event_id in self._seen:
                    continue  # a rejoined room's timeline repeats older events
                self._seen.add(event.event_id)
                if isinstance(event, nio.RoomMessage) and event.sender != self.client.user_id:
                    self.messages.append((room_id, event.source["content"]))

    async def wait_for(self, count: int, timeout: float = 20) -> list[tuple[str, dict[str, Any]]]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.messages)} of {count} messages arrived")
            try:
                await self.poll()
            except (aiohttp.ClientError, OSError, TimeoutError):
                pass  # the homeserver is being restarted: ask again
            await asyncio.sleep(0.1)
        return self.messages

    async def close(self) -> None:
        await self.client.close()


class Synapse:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90) -> None:
        (self.dir / "media").mkdir(exist_ok=True)
        (self.dir / "log.yaml").write_text(log_yaml(self.dir))
        config = self.dir / "homeserver.yaml"
        config.write_text(homeserver_yaml(self.dir, self.port))
        command = [sys.executable, "-m", "synapse.app.homeserver", "-c", str(config)]
        if not (self.dir / "signing.key").exists():  # not again at a restart
            subprocess.run([*command, "--generate-keys"], check=True, capture_output=True)
        with (self.dir / "synapse.out").open("ab") as out:
            self._process = subprocess.Popen(command, stdout=out, stderr=out)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError("Synapse exited:\n" + self.logs())
            try:
                if httpx.get(f"{self.url}/_matrix/client/versions", timeout=1).is_success:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()  # not left running behind the failed fixture
        raise RuntimeError("Synapse did not start:\n" + self.logs())

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(20)
            except subprocess.TimeoutExpired:
                self._process.kill()
            self._process = None

    def requests(self, containing: str) -> list[str]:
        """The access-log lines of the requests served so far that contain `containing`."""
        path = self.dir / "access.log"
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        return [line for line in lines if containing in line]

    def logs(self) -> str:
        path = self.dir / "synapse.out"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def register(self, localpart: str, admin: bool = False) -> Account:
        """An account through the shared-secret registration API."""
        endpoint = f"{self.url}/_synapse/admin/v1/register"
        nonce = httpx.get(endpoint, timeout=HTTP_TIMEOUT).json()["nonce"]
        password = f"pw-{localpart}"
        # HMAC-SHA1 of nonce, user, password and admin flag, joined by NUL bytes.
        fields = (nonce, localpart, password, "admin" if admin else "notadmin")
        mac = hmac.new(SHARED_SECRET.encode(), b"\x00".join(f.encode() for f in fields), "sha1")
        body = {
            "nonce": nonce,
            "username": localpart,
            "password": password,
            "admin": admin,
            "mac": mac.hexdigest(),
        }
        response = httpx.post(endpoint, json=body, timeout=HTTP_TIMEOUT)
        response.raise_for_status()
        data = response.json()
        return Account(data["user_id"], data["access_token"])

    def override_ratelimit(self, admin: Account, user_id: str, per_second: int, burst: int) -> None:
        httpx.post(
            f"{self.url}/_synapse/admin/v1/users/{user_id}/override_ratelimit",
            headers={"Authorization": f"Bearer {admin.access_token}"},
            json={"messages_per_second": per_second, "burst_count": burst},
        ).raise_for_status()

    def clear_ratelimit(self, admin: Account, user_id: str) -> None:
        httpx.delete(
            f"{self.url}/_synapse/admin/v1/users/{user_id}/override_ratelimit",
            headers={"Authorization": f"Bearer {admin.access_token}"},
        ).raise_for_status()

    def login_as(self, admin: Account, user_id: str, valid_for: float | None = None) -> str:
        """A new access token for `user_id` (the admin API), expiring after `valid_for` s."""
        body = {}
        if valid_for is not None:
            body["valid_until_ms"] = int((time.time() + valid_for) * 1000)
        response = httpx.post(
            f"{self.url}/_synapse/admin/v1/users/{user_id}/login",
            headers={"Authorization": f"Bearer {admin.access_token}"},
            json=body,
            timeout=HTTP_TIMEOUT,
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def logout(self, access_token: str) -> None:
        """Revoke a token, as a user does with "sign out" on that session."""
        httpx.post(
            f"{self.url}/_matrix/client/v3/logout",
            headers={"Authorization": f"Bearer {access_token}"},
            json={},
            timeout=HTTP_TIMEOUT,
        ).raise_for_status()

    async def reader(self, account: Account) -> MatrixReader:
        # Errors come back at once (nio would otherwise retry with growing sleeps, and a reader
        # would lag a homeserver restart by up to a minute).
        config = nio.AsyncClientConfig(max_timeouts=0, request_timeout=10)
        client = nio.AsyncClient(self.url, account.user_id, config=config)
        client.access_token = account.access_token
        client.user_id = account.user_id
        reader = MatrixReader(client)
        await reader.poll()  # the first sync: later polls see only what is new
        return reader


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        server = Synapse(Path(d))
        started = time.monotonic()
        server.start()
        print(f"started in {time.monotonic() - started:.1f}s")
        try:
            print(server.register("bot", admin=True))
        finally:
            server.stop()

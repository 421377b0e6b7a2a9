"""The real OIDC provider of the API tests: node's oidc-provider
(tests/harness/oidc_provider/provider.mjs), run in its own process on a free port, issuing real
tokens to test users by the password grant."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tests.harness.ports import free_port

OIDC_DIR = Path(__file__).resolve().parent / "oidc_provider"
CLIENT_ID = "fmn-api-tests"
CLIENT_SECRET = "fmn-api-tests-secret"
# Another application of the same provider: its users' tokens are not log-ins to fmn.
OTHER_CLIENT_ID = "another-app"
OTHER_CLIENT_SECRET = "another-app-secret"
PASSWORD = "password"


def install() -> None:
    """`npm ci` once (the Makefile does it too); a lock keeps xdist workers from racing."""
    if (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed for the OIDC provider of the API tests")
    lock_path = Path(tempfile.gettempdir()) / "fmn-tests-oidc-npm-ci.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
            subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"], cwd=OIDC_DIR, check=True, timeout=300
            )


class Provider:
    def __init__(self, accounts: dict[str, dict[str, Any]], workdir: Path) -> None:
        self.accounts = accounts
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        self.issuer = ""

    def start(self) -> None:
        install()
        data = {
            "clients": [
                {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
                {"client_id": OTHER_CLIENT_ID, "client_secret": OTHER_CLIENT_SECRET},
            ],
            "accounts": {
                name: {"password": PASSWORD, **info} for name, info in self.accounts.items()
            },
        }
        data_file = self.workdir / "oidc-accounts.json"
        data_file.write_text(json.dumps(data))
        port = free_port()
        self.issuer = f"http://127.0.0.1:{port}"
        log = (self.workdir / "oidc-provider.log").open("wb")
        node = shutil.which("node") or "node"
        self.process = subprocess.Popen(
            [node, "provider.mjs", str(port), str(data_file)],
            cwd=OIDC_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "NODE_ENV": "test"},
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the OIDC provider exited; see {log.name}")
            try:
                if httpx.get(f"{self.issuer}/.well-known/openid-configuration").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the OIDC provider did not start within 30 s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def token(
        self, username: str, client: tuple[str, str] = (CLIENT_ID, CLIENT_SECRET), **extra: str
    ) -> str:
        """A real access token for a test user (password grant), issued to `client`."""
        response = httpx.post(
            f"{self.issuer}/token",
            auth=client,
            data={
                "grant_type": "password",
                "username": username,
                "password": PASSWORD,
                "scope": "openid profile email groups",
                **extra,
            },
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token

    def revoke(self, token: str) -> None:
        httpx.post(
            f"{self.issuer}/token/revocation",
            auth=(CLIENT_ID, CLIENT_SECRET),
            data={"token": token},
        ).raise_for_status()

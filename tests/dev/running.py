"""Starting `fmn run` as a subprocess on a free port and logging in to it as the web app does
(the OIDC code flow with PKCE against the built-in provider): the run and wheel tests use this."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.harness.ports import free_port

FMN = Path(sys.executable).with_name("fmn")


@dataclass
class Run:
    process: subprocess.Popen[bytes]
    url: str
    stdout: Path
    stderr: Path

    def output(self) -> str:
        return self.stdout.read_text() + self.stderr.read_text(errors="replace")

    def interrupt(self, timeout: float = 20) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout)


def start(
    tmp: Path, fmn: Path = FMN, args: Sequence[str] = ("--builtin-login",), **env: str
) -> Run:
    """`fmn run ARGS` (the checkout's, or `fmn`) in `tmp` on a free port, once its banner is
    out; by default with the built-in log-in."""
    port = free_port()
    (tmp / "fmn.toml").write_text("")
    stdout, stderr = tmp / "stdout.txt", tmp / "stderr.txt"
    process = subprocess.Popen(
        [str(fmn), "run", "--port", str(port), *args],
        cwd=tmp,
        env={**os.environ, "FMN_CONFIG": str(tmp / "fmn.toml"), **env},
        stdout=stdout.open("wb"),
        stderr=stderr.open("wb"),
    )
    run = Run(process, f"http://127.0.0.1:{port}", stdout, stderr)
    # A hang, not a slow start: a clean-clone CI run at a load average of 20 took over 60 s.
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"fmn run exited with {process.returncode}:\n{run.output()}")
        if "Ctrl-C stops everything" in stdout.read_text():
            return run
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"fmn run did not start in time:\n{run.output()}")


def log_in(http: httpx.Client, username: str) -> dict[str, Any]:
    """The authorization code flow with PKCE, as oidc-client-ts runs it: returns the tokens."""
    config = http.get("/api/v1/config").json()
    assert config["oidc_provider_url"].startswith(str(http.base_url).rstrip("/")), config
    provider = http.get(f"{config['oidc_provider_url']}/.well-known/openid-configuration").json()
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    callback = str(http.base_url).rstrip("/") + "/login/callback"
    params = {
        "response_type": "code",
        "client_id": config["oidc_client_id"],
        "redirect_uri": callback,
        "scope": config["oidc_scopes"],
        "state": secrets.token_urlsafe(8),
        "code_challenge": base64.urlsafe_b64encode(digest).rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }
    page = http.get(provider["authorization_endpoint"], params=params)
    assert page.status_code == 200, page.text
    assert f'value="{username}"' in page.text
    answer = http.post(provider["authorization_endpoint"], data={**params, "username": username})
    assert answer.status_code == 302, answer.text
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert query["state"] == [params["state"]]
    tokens = http.post(
        provider["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": callback,
            "client_id": config["oidc_client_id"],
            "code_verifier": verifier,
        },
    )
    assert tokens.status_code == 200, tokens.text
    return dict(tokens.json())


def wait_for(http: httpx.Client, path: str, headers: dict[str, str], seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = http.get(path, headers=headers).json()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"nothing at {path} within {seconds} s")

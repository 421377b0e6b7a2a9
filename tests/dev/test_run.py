"""`fmn run` for real: a subprocess on free ports in a temporary directory, driven over HTTP the way
the web app drives it (the OIDC code flow with PKCE against the built-in provider, then the API),
until a notification from the demo feed arrives in the SMTP sink and the IRC log."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import CORPUS_DIR
from tests.dev.running import FMN, Run, log_in, start, wait_for
from tests.harness import services

# One worker runs these in file order: they share one `fmn run`, which the last one stops.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("fmn-run")]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("fmn-run")
    running = start(tmp, FMN_DEV__CORPUS_DIR=str(CORPUS_DIR), FMN_DEV__FEED_INTERVAL="0.2")
    yield running
    if running.process.poll() is None:
        running.process.kill()
        running.process.wait()


def test_the_banner_gives_the_url_and_the_log_ins(run: Run) -> None:
    banner = run.stdout.read_text()
    assert f"fmn is running: {run.url}/" in banner
    for user in ("alice", "bob", "carol", "dave"):
        assert f"    {user} " in banner
    assert "demo feed:" in banner
    assert (run.stdout.parent / "var" / "fmn.sqlite").is_file()


def test_log_in_create_a_rule_and_receive_notifications(run: Run) -> None:
    with httpx.Client(base_url=run.url, timeout=10) as http:
        tokens = log_in(http, "bob")
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        me = http.get("/api/v1/users/me", headers=bearer)
        assert me.status_code == 200, me.text
        assert me.json()["name"] == "bob"

        # A rule for bob's packages, to IRC (the default rule "My Events" sends email).
        rule = {
            "name": "My packages on IRC",
            "tracking_rule": {"name": "artifacts-owned", "params": ["bob"]},
            "generation_rules": [{"destinations": [{"protocol": "irc", "address": "bob"}]}],
        }
        created = http.post("/api/v1/users/bob/rules", json=rule, headers=bearer)
        assert created.status_code in (200, 201), created.text
        rules = http.get("/api/v1/users/bob/rules", headers=bearer).json()
        assert {r["name"] for r in rules} >= {"My Events", "My packages on IRC"}

        mail = wait_for(http, "/api/v1/dev/mail", bearer, 60)
        assert mail[0]["to"] == ["bob@example.org"]
        assert mail[0]["subject"]
        assert mail[0]["text"]
        chat = wait_for(http, "/api/v1/dev/chat", bearer, 60)
        assert chat[0]["protocol"] == "irc"
        assert chat[0]["address"] == "bob"

        # Someone else's mail is not shown.
        alice = log_in(http, "alice")
        theirs = http.get(
            "/api/v1/dev/mail", headers={"Authorization": f"Bearer {alice['access_token']}"}
        ).json()
        assert all(m["to"] == ["alice@example.org"] for m in theirs)
        assert http.get("/api/v1/dev/mail").status_code == 401


def test_fmn3_web_app_logs_in_and_finds_the_api_documentation(run: Run) -> None:
    """What FMN 3's web app does against `fmn run`: userinfo by POST with the access token in
    the form body (AppAuth-JS), and the footer's link to <server>/docs."""
    with httpx.Client(base_url=run.url, timeout=10) as http:
        tokens = log_in(http, "carol")
        config = http.get("/api/v1/config").json()
        provider = http.get(f"{config['oidc_provider_url']}/.well-known/openid-configuration")
        userinfo = http.post(
            provider.json()["userinfo_endpoint"], data={"access_token": tokens["access_token"]}
        )
        assert userinfo.status_code == 200, userinfo.text
        assert userinfo.json()["sub"] == "carol"
        docs = http.get("/docs", follow_redirects=True)
        assert docs.url.path == "/api/v1/docs" and "swagger-ui" in docs.text


def test_the_first_ten_demo_mails_read_as_production(run: Run) -> None:
    """Every demo mail has a human subject (the schema's summary, not the topic) and a text that
    is not a dump of the message."""
    with httpx.Client(base_url=run.url, timeout=10) as http:
        bearers = [
            {"Authorization": f"Bearer {log_in(http, user)['access_token']}"}
            for user in ("alice", "bob", "carol", "dave")
        ]
        deadline = time.monotonic() + 60
        mails: list[dict[str, Any]] = []
        while len(mails) < 10 and time.monotonic() < deadline:
            time.sleep(0.5)
            mails = [m for b in bearers for m in http.get("/api/v1/dev/mail", headers=b).json()]
    assert len(mails) >= 10, mails
    for mail in sorted(mails, key=lambda m: m["id"])[:10]:
        subject = re.sub(r"^\[[^]]*\] ", "", mail["subject"])
        assert " " in subject and not subject.startswith(("org.", "io.")), mail["subject"]
        assert "Body: {" not in mail["text"] and not mail["text"].startswith("Id: "), mail


def test_the_inbox_fills_live_from_the_demo_feed(run: Run) -> None:
    """The web sender runs in `fmn run`: the demo feed's notifications arrive in the inbox,
    on the live stream (the bell), in the Atom feed; Web Push has its key."""
    with httpx.Client(base_url=run.url, timeout=10) as http:
        tokens = log_in(http, "carol")
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        rules = http.get("/api/v1/users/carol/rules", headers=bearer).json()
        destinations = rules[0]["generation_rules"][0]["destinations"]
        assert {"protocol": "web", "address": "carol"} in destinations
        with http.stream(
            "GET", "/api/v1/users/carol/inbox/stream", headers=bearer, timeout=90
        ) as stream:
            assert stream.status_code == 200
            event = None
            for line in stream.iter_lines():
                if line == "event: notification":
                    event = line
                if event and line.startswith("data: "):
                    entry = json.loads(line.removeprefix("data: "))
                    break
        listed = http.get("/api/v1/users/carol/inbox", headers=bearer).json()
        assert entry["id"] in {e["id"] for e in listed}
        assert http.get("/api/v1/users/carol/inbox/count", headers=bearer).json()["total"] >= 1
        feeds = http.get("/api/v1/users/carol/feeds", headers=bearer).json()
        atom = http.get(feeds["inbox"].removeprefix(run.url))
        assert atom.status_code == 200 and b"<entry>" in atom.content.replace(b"ns0:", b"")
        assert http.get("/api/v1/push/vapid-public-key").json()["public_key"]
    assert (run.stdout.parent / "var" / "vapid_private_key").is_file()


def test_ctrl_c_stops_everything_cleanly(run: Run) -> None:
    started = time.monotonic()
    assert run.interrupt() == 0, run.output()
    assert time.monotonic() - started < 15
    assert "Traceback" not in run.output()


def test_without_a_corpus_it_says_so_and_runs_without_a_feed(tmp_path: Path) -> None:
    """And without --builtin-login: no password-less log-in and no dev routes, even though
    oidc.provider_url is left at its default."""
    running = start(
        tmp_path, args=["--host", "127.0.0.1"], FMN_DEV__CORPUS_DIR=str(tmp_path / "nowhere")
    )
    try:
        banner = running.stdout.read_text()
        assert "demo feed: off: no corpus at" in banner
        assert str(tmp_path / "nowhere") in banner
        assert "log in as" not in banner and "oidc" not in banner
        with httpx.Client(base_url=running.url, timeout=10) as http:
            assert http.get("/api/v1/healthz/live").status_code == 200
            assert http.get("/idp/.well-known/openid-configuration").status_code == 404
            assert http.get("/api/v1/dev/info").status_code == 404
            config = http.get("/api/v1/config").json()
            assert config["oidc_provider_url"] == "https://id.fedoraproject.org/openidc"
        assert running.interrupt() == 0, running.output()
    finally:
        if running.process.poll() is None:
            running.process.kill()


def test_builtin_login_on_an_open_address_is_announced_loudly(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        port = taken.getsockname()[1]
        (tmp_path / "fmn.toml").write_text("")
        result = subprocess.run(
            [str(FMN), "run", "--builtin-login", "--host", "0.0.0.0", "--port", str(port)],
            cwd=tmp_path,
            env={**os.environ, "FMN_CONFIG": str(tmp_path / "fmn.toml")},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert "ANYONE WHO CAN REACH THIS ADDRESS CAN LOG IN AS ANY USER" in result.stderr
    assert result.returncode != 0  # the port was taken


def test_configured_services_replace_the_stand_ins(tmp_path: Path, redis_url: str) -> None:
    """PostgreSQL, RabbitMQ and Redis configured: the same command runs on them."""
    database = f"fmn_run_{services.worker_id()}"
    pg_url = services.recreate_database(database)
    vhost, amqp_url = services.create_vhost()
    try:
        running = start(
            tmp_path,
            FMN_DATABASE__URL=pg_url,
            FMN_BUS__AMQP_URL=amqp_url,
            FMN_SEND_QUEUE__AMQP_URL=amqp_url,
            FMN_CACHE__URL=redis_url,
            FMN_DEV__CORPUS_DIR=str(CORPUS_DIR),
            FMN_DEV__FEED_INTERVAL="0.2",
        )
        try:
            banner = running.stdout.read_text()
            assert "embedded stand-ins: directory, oidc, email, irc, matrix\n" in banner
            assert not (tmp_path / "var" / "fmn.sqlite").exists()
            with httpx.Client(base_url=running.url, timeout=10) as http:
                tokens = log_in(http, "alice")
                bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
                me = http.get("/api/v1/users/me", headers=bearer)
                assert me.status_code == 200, (me.text, running.output()[-3000:])
                assert me.json()["name"] == "alice"
                mail = wait_for(http, "/api/v1/dev/mail", bearer, 60)
                assert mail[0]["to"] == ["alice@example.org"]
            assert running.interrupt() == 0, running.output()
        finally:
            if running.process.poll() is None:
                running.process.kill()
                running.process.wait()
    finally:
        services.delete_vhost(vhost)
        services.drop_database(database)

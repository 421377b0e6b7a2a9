"""SMTP and IRC passwords never cross the network without TLS unless the operator says so."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from fmn.core.settings import ConfigError
from fmn.senders.service import run_sender
from fmn.transport import Broker
from tests.harness.signing import SIGNING_KEY
from tests.harness.smtp_server import SMTPServer
from tests.senders.conftest import running, sender_settings
from tests.senders.helpers import eventually, make_item, publish


def sender(protocol: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "fmn.toml").write_text(f'[api]\nsecret_keys = ["{SIGNING_KEY}"]\n')
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FMN_")}
    return subprocess.run(
        [sys.executable, "-m", "fmn", "sender", protocol],
        env={**clean, "FMN_CONFIG": str(tmp_path / "fmn.toml"), **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_senders_refuse_to_start_with_a_password_in_clear_text(tmp_path: Path) -> None:
    email = sender(
        "email",
        tmp_path,
        FMN_SENDERS__EMAIL__USERNAME="fmn",
        FMN_SENDERS__EMAIL__PASSWORD="s3cret",
    )
    assert email.returncode != 0
    [line] = email.stderr.strip().splitlines()
    assert "senders.email.password would be sent without TLS" in line
    assert "senders.email.allow_insecure_auth" in line
    irc = sender(
        "irc",
        tmp_path,
        FMN_SENDERS__IRC__TLS="false",
        FMN_SENDERS__IRC__SASL_USERNAME="fmn",
        FMN_SENDERS__IRC__SASL_PASSWORD="s3cret",
    )
    assert irc.returncode != 0
    [line] = irc.stderr.strip().splitlines()
    assert "senders.irc.sasl_password would be sent without TLS" in line


# The SMTP server of this test takes a password without TLS on purpose (aiosmtpd warns).
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_a_password_in_clear_text_only_when_allowed(
    amqp_url: str,
    redis_url: str,
    pg_url: str,
    exchange: str,
    broker: Broker,
    redis_client: aioredis.Redis,
) -> None:
    smtp = SMTPServer(login=("fmn", "s3cret"))
    smtp.start()
    email = {"smtp_port": smtp.port, "tls": "none", "username": "fmn", "password": "s3cret"}
    try:
        refused = sender_settings(amqp_url, redis_url, pg_url, exchange, email=email)
        with pytest.raises(ConfigError, match="allow_insecure_auth"):
            await run_sender("email", refused, asyncio.Event())
        allowed = sender_settings(
            amqp_url, redis_url, pg_url, exchange, email={**email, "allow_insecure_auth": True}
        )
        async with running("email", allowed):
            await publish(broker, exchange, make_item("email", "alice@example.org"))
            await eventually(lambda: smtp.received)
    finally:
        smtp.stop()

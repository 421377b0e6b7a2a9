"""A sender process killed in the middle of its queue and started again: nothing is lost and
nothing is sent twice."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from fmn.sendqueue.topology import send_queue
from fmn.transport import Broker
from tests.harness.signing import SIGNING_KEY
from tests.harness.smtp_server import Sink, SMTPServer
from tests.senders.conftest import RETRY_DELAYS
from tests.senders.helpers import eventually, make_item, publish

FMN = str(Path(sys.executable).parent / "fmn")


def write_config(
    path: Path,
    amqp_url: str,
    redis_url: str,
    pg_url: str,
    exchange: str,
    port: int,
    senders: str = "",
    tail: str = "",
) -> Path:
    """`senders` goes into the [senders] table, `tail` (more tables) at the end."""
    # JSON strings and lists are valid TOML values.
    path.write_text(
        f"""
public_url = "https://notifications.example.org"
[api]
secret_keys = {json.dumps([SIGNING_KEY])}
[database]
url = {json.dumps(pg_url)}
[cache]
url = {json.dumps(redis_url)}
[send_queue]
amqp_url = {json.dumps(amqp_url)}
exchange = {json.dumps(exchange)}
retry_delays = {json.dumps(RETRY_DELAYS)}
sender_prefetch = 50
[senders]
log_flush_interval = 0.1
{senders}
[senders.email]
smtp_host = "127.0.0.1"
smtp_port = {port}
connections = 1
{tail}"""
    )
    return path


def start_sender(config: Path, log: Path, protocol: str = "email") -> subprocess.Popen[bytes]:
    env = {**os.environ, "FMN_CONFIG": str(config)}
    with log.open("ab") as out:
        return subprocess.Popen([FMN, "sender", protocol], env=env, stdout=out, stderr=out)


# One work item per AMQP message, or ten (as the consumer packs them): a message whose items
# were partly sent when the sender died comes back whole, and only its unsent items go out.
@pytest.mark.parametrize("per_message", [1, 10])
async def test_killed_mid_queue_then_restarted(
    per_message: int,
    amqp_url: str,
    redis_url: str,
    pg_url: str,
    exchange: str,
    broker: Broker,
    tmp_path: Path,
    redis_client: aioredis.Redis,
) -> None:
    total, kill_at = 120, 40
    process: subprocess.Popen[bytes] | None = None
    killed: list[int] = []

    def kill_during_the_40th(count: int) -> str | None:
        # The server has the 40th mail but has not said "250": the sender dies right there,
        # so that mail must not count as delivered (a real MTA would discard it too). The
        # earlier ones may still be unacked (they come back and must be dropped), but their
        # marks are written: no crash can avoid a resend in the instant between a server's
        # "250" and the mark, and that instant is not what this test is about.
        if count == kill_at and not killed and process is not None:
            marks = redis.Redis.from_url(redis_url)
            deadline = time.monotonic() + 10
            while len(marks.keys("fmn:senders:sent:*")) < kill_at - 1:
                assert time.monotonic() < deadline, "the sender did not mark what it sent"
                time.sleep(0.005)
            marks.close()
            killed.append(process.pid)
            process.send_signal(signal.SIGKILL)
            process.wait()
            return "451 4.3.0 try again"
        return None

    smtp = SMTPServer(Sink(delay=0.002, before_store=kill_during_the_40th))
    smtp.start()
    config = write_config(tmp_path / "fmn.toml", amqp_url, redis_url, pg_url, exchange, smtp.port)
    log = tmp_path / "sender.log"
    items = [make_item("email", f"user{i}@example.org") for i in range(total)]
    try:
        await publish(broker, exchange, *items, per_message=per_message)
        process = first = start_sender(config, log)
        await eventually(lambda: first.poll() is not None, timeout=60)
        assert first.returncode == -signal.SIGKILL
        delivered_before = len(smtp.received)
        assert delivered_before == kill_at - 1
        assert await broker.queue_size(send_queue(exchange, "email")) > 0

        process = start_sender(config, log)
        try:
            await eventually(lambda: len(smtp.received) >= total, timeout=30)
        except AssertionError:
            raise AssertionError(
                f"{len(smtp.received)} received; " + log.read_text()[-3000:]
            ) from None
        # Give a duplicate the chance to show up.
        await asyncio.sleep(0.5)
    finally:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        smtp.stop()

    counts = Counter(r.rcpt_tos[0] for r in smtp.received)
    assert len(counts) == total, log.read_text()[-3000:]
    assert max(counts.values()) == 1
    assert process is not None and process.returncode == 0  # SIGTERM is a clean stop


async def test_sigusr1_says_where_each_task_waits_and_the_sender_goes_on(
    amqp_url: str, redis_url: str, pg_url: str, exchange: str, broker: Broker, tmp_path: Path
) -> None:
    # For a sender that does not stop or does not progress: look inside without stopping it.
    smtp = SMTPServer(Sink())
    smtp.start()
    config = write_config(tmp_path / "fmn.toml", amqp_url, redis_url, pg_url, exchange, smtp.port)
    log = tmp_path / "sender.log"
    process = start_sender(config, log)
    try:
        await publish(broker, exchange, make_item("email", "alice@example.org"))
        await eventually(lambda: len(smtp.received) == 1, timeout=60)  # running, past its set-up
        process.send_signal(signal.SIGUSR1)
        await eventually(lambda: "where each waits" in log.read_text(), timeout=30)
        assert "Stack for <Task pending name='sender-email'" in log.read_text()
        assert process.poll() is None
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        smtp.stop()
    assert process.returncode == 0

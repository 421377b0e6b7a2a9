"""The soak, short: a few thousand bus messages through the real system (two consumer
processes, the email and IRC senders, an SMTP server, an IRC network, the directory server)
while every fault happens once, injected without touching the machine's shared services:
kill -9 of a consumer and of each sender, RabbitMQ, Redis and PostgreSQL cut off (TCP proxies),
the SMTP server refusing mail, the directory failing during an ownership change. Nothing may be
lost or sent twice, every dead letter must be one the world planned, every fault recovered from.

The long run, which restarts the real services: bench/soak.py (docs/reliability.md).
"""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest

from bench.soak import run_soak
from bench.soak_faults import FAULT_NAMES
from bench.soak_system import SoakConfig
from bench.soak_world import MAIL_DOMAIN, PUBLIC_URL, email_message_id
from fmn.senders.email import MailSettings, build_notification
from tests.harness import services
from tests.senders.helpers import make_item

pytestmark = pytest.mark.xdist_group("reliability")


def test_a_mail_names_its_notification() -> None:
    # The soak tells which notification a mail is by its Message-ID: the sender's, exactly.
    item = make_item("email", "alice@example.org")
    settings = MailSettings(f"FMN <notifications@{MAIL_DOMAIN}>", "fmn", PUBLIC_URL, ["secret"])
    mail = email.message_from_bytes(build_notification(item, settings), policy=email.policy.default)
    assert mail["Message-ID"] == email_message_id(item.key)


@pytest.mark.timeout(600)
async def test_every_fault_once_nothing_lost_nothing_twice(tmp_path: Path) -> None:
    config = SoakConfig(
        messages=2400,
        rate=40.0,
        mode="proxy",
        faults=list(FAULT_NAMES),
        fault_seconds=3.0,
        recovery_timeout=90.0,
        workdir=tmp_path / "soak",
        redis_db=1 + services.worker_number() % 15,
        irc_lease=6.0,
    )
    lines: list[str] = []
    report = await run_soak(config, lines.append)
    text = report.text()
    (tmp_path / "report.txt").write_text("\n".join(lines) + "\n\n" + text)
    assert report.ok, "\n".join(lines) + "\n\n" + text + f"\n\nlogs in {config.workdir}"
    assert report.delivered + report.dead_lettered == report.expected
    assert {f.name for f in report.faults} and len(report.faults) == len(FAULT_NAMES)

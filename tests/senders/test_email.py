"""The email sender against a real SMTP server."""

from __future__ import annotations

import asyncio
import email
import email.policy
import email.utils
import json
from collections import Counter
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from fmn.api.verification import verification_item
from fmn.core.settings import Settings
from fmn.core.signing import InvalidToken, Unsubscribe, read_unsubscribe_token
from fmn.db.models import DeliveryStatus
from fmn.senders.email import MailSettings, build_notification
from fmn.sendqueue.topology import retry_queue
from fmn.sendqueue.workitem import RuleRef, WorkItem
from fmn.transport import Broker
from tests.harness.signing import SIGNING_KEY
from tests.harness.smtp_server import Received, SMTPServer, self_signed_cert
from tests.senders.conftest import running, sender_settings
from tests.senders.helpers import SENT_AT, delivery_log, eventually, make_item, publish


async def deliver_one(
    settings: Settings, broker: Broker, smtp: SMTPServer, exchange: str, item: WorkItem
) -> Received:
    async with running("email", settings):
        await publish(broker, exchange, item)
        await eventually(lambda: smtp.received)
    [received] = smtp.received
    return received


async def test_delivery_with_every_header(
    email_settings: Settings, broker: Broker, smtp: SMTPServer, exchange: str, pg_url: str
) -> None:
    item = make_item(
        "email",
        "alice@example.org",
        rules=[RuleRef(id=7, name="My packages"), RuleRef(id=9, name=None)],
        metadata={"Topic": "org.fedoraproject.prod.buildsys.build.state.change", "Packages": "foo"},
    )
    async with running("email", email_settings):
        await publish(broker, exchange, item)
        await eventually(lambda: smtp.received)

    [received] = smtp.received
    assert received.rcpt_tos == ["alice@example.org"]
    assert received.mail_from == "notifications@fedoraproject.org"
    msg = received.message
    assert msg["From"] == "Fedora Notifications <notifications@fedoraproject.org>"
    assert msg["To"] == "alice@example.org"
    assert msg["Subject"] == f"[koji] {item.message.summary}"
    assert email.utils.parsedate_to_datetime(msg["Date"]) == SENT_AT
    assert msg["Message-ID"].endswith("@fedoraproject.org>")
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Precedence"] == "bulk"
    assert msg["List-Id"] == "Fedora Notifications <fmn.fedoraproject.org>"
    assert msg["X-Fedora-Notify-Topic"] == "org.fedoraproject.prod.buildsys.build.state.change"
    assert msg["X-Fedora-Notify-Packages"] == "foo"
    # About two rules: stopping one would not stop such a mail, so no one-click link.
    assert msg["List-Unsubscribe"] is None and msg["List-Unsubscribe-Post"] is None

    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert item.message.summary in text
    assert '"My packages": https://notifications.example.org/rules/7' in text
    assert "https://notifications.example.org/rules/9" in text
    assert item.message.summary in html and "<script>" not in html
    assert 'href="https://notifications.example.org/rules/7"' in html

    rows = await eventually(lambda: delivery_log(pg_url, idempotency_key=item.key))
    assert [(r.status, r.attempt, r.rule_ids) for r in rows] == [(DeliveryStatus.SENT, 1, [7, 9])]


def test_unsubscribe_link_names_one_rule_and_one_address() -> None:
    cfg = MailSettings(
        "FMN <fmn@example.org>",
        "fmn",
        "https://notifications.example.org",
        [
            "new-signing-key-0123456789abcdefghij",
            SIGNING_KEY,
        ],
    )
    item = make_item("email", "alice@example.org", rules=[RuleRef(id=7, name="My packages")])
    msg = email.message_from_bytes(build_notification(item, cfg), policy=email.policy.default)
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = msg["List-Unsubscribe"].strip("<>")
    prefix = "https://notifications.example.org/api/v1/unsubscribe/"
    assert link.startswith(prefix)
    token = link.removeprefix(prefix)
    # Signed with the first key: the API still knowing only the old key refuses it.
    wanted = read_unsubscribe_token(cfg.secret_keys, token, 180)
    assert wanted == Unsubscribe("alice", 7, "email", "alice@example.org")
    with pytest.raises(InvalidToken):
        read_unsubscribe_token([SIGNING_KEY], token, 180)


async def test_a_redelivered_item_is_sent_once(
    email_settings: Settings, broker: Broker, smtp: SMTPServer, exchange: str
) -> None:
    item = make_item("email", "alice@example.org")
    other = make_item("email", "alice@example.org")
    async with running("email", email_settings):
        await publish(broker, exchange, item)
        await eventually(lambda: len(smtp.received) == 1)
        # The broker hands out the same item again (as after a crash before the ack).
        await publish(broker, exchange, item, other)
        await eventually(lambda: len(smtp.received) == 2)
    subjects = [r.message["Subject"] for r in smtp.received]
    assert subjects == [item.email.subject, other.email.subject]  # type: ignore[union-attr]


async def test_a_sender_stopped_mid_queue_sends_nothing_twice_after(
    email_settings: Settings, broker: Broker, smtp: SMTPServer, exchange: str
) -> None:
    """Stopped while mails are in flight: each mail the server took is marked and acked before
    the sender ends (the worker is cancelled, its mark is not), so the next sender sends each
    of the others once and none of those again."""
    addresses = [f"user{n}@example.org" for n in range(60)]
    async with running("email", email_settings):
        await publish(broker, exchange, *(make_item("email", a) for a in addresses))
        await eventually(lambda: len(smtp.received) >= 10)
    async with running("email", email_settings):
        await eventually(lambda: len(smtp.received) >= len(addresses))
        await asyncio.sleep(0.5)  # a second copy would show up by now
    assert Counter(r.rcpt_tos[0] for r in smtp.received) == Counter(addresses)


async def test_header_injection_is_impossible(
    email_settings: Settings, broker: Broker, smtp: SMTPServer, exchange: str
) -> None:
    item = make_item(
        "email",
        "alice@example.org",
        subject="hello\r\nBcc: mallory@evil.example\r\n\r\nbody",
        summary="x\nBcc: mallory@evil.example",
        metadata={
            "Topic": "t\r\nBcc: mallory@evil.example",
            "Evil\r\nBcc": "mallory@evil.example",
            "Package": "foo\x00\x1b[31m",
        },
        rules=[RuleRef(id=3, name="r\nBcc: mallory@evil.example")],
    )
    received = await deliver_one(email_settings, broker, smtp, exchange, item)
    assert received.rcpt_tos == ["alice@example.org"]
    msg = received.message
    assert msg["Bcc"] is None
    assert msg["Subject"] == "hello Bcc: mallory@evil.example body"
    assert msg["X-Fedora-Notify-Topic"] == "t Bcc: mallory@evil.example"
    assert msg["X-Fedora-Notify-EvilBcc"] == "mallory@evil.example"
    assert msg["X-Fedora-Notify-Package"] == "foo[31m"
    header_names = {name.lower() for name in msg}
    assert "bcc" not in header_names


async def test_bidi_controls_reach_no_header(
    email_settings: Settings, broker: Broker, smtp: SMTPServer, exchange: str
) -> None:
    item = make_item(
        "email",
        "alice@example.org",
        subject="invoice\u202egpj.exe\u2066 ready",
        metadata={"Topic": "t\u202e.x", "Packages": "fo\u200fo"},
        rules=[RuleRef(id=3, name="mi\u202ene")],
    )
    msg = (await deliver_one(email_settings, broker, smtp, exchange, item)).message
    assert msg["Subject"] == "invoicegpj.exe ready"
    assert msg["X-Fedora-Notify-Topic"] == "t.x"
    assert msg["X-Fedora-Notify-Packages"] == "foo"
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert '"mine": https://notifications.example.org/rules/3' in text


async def test_smtp_down_then_back(
    amqp_url: str,
    redis_url: str,
    pg_url: str,
    exchange: str,
    broker: Broker,
    redis_client: aioredis.Redis,
) -> None:
    """The server is away for two retries: the mail arrives later, dated when it was sent."""
    smtp = SMTPServer()
    settings = sender_settings(
        amqp_url, redis_url, pg_url, exchange, email={"smtp_port": smtp.port}
    )
    item = make_item("email", "alice@example.org")
    async with running("email", settings):
        await publish(broker, exchange, item)
        rows = await eventually(
            lambda: delivery_log(pg_url, idempotency_key=item.key, status=DeliveryStatus.FAILED)
        )
        assert "SMTP" in (rows[0].detail or "")
        smtp.start()
        try:
            await eventually(lambda: smtp.received)
        finally:
            smtp.stop()
    msg = smtp.received[0].message
    assert email.utils.parsedate_to_datetime(msg["Date"]) == SENT_AT
    rows = await eventually(
        lambda: delivery_log(pg_url, idempotency_key=item.key, status=DeliveryStatus.SENT)
    )
    assert rows[0].attempt >= 2
    assert await broker.queue_size(retry_queue(exchange, "email", 0)) == 0


@pytest.mark.parametrize("tls", ["starttls", "tls"])
# aiosmtpd does not know its implicit-TLS socket is TLS, and warns about AUTH over it.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_tls_and_login(
    amqp_url: str,
    redis_url: str,
    pg_url: str,
    exchange: str,
    broker: Broker,
    tmp_path: Path,
    redis_client: aioredis.Redis,
    tls: str,
) -> None:
    cert, key = self_signed_cert(tmp_path)
    smtp = SMTPServer(tls=(cert, key), login=("fmn", "s3cret"), implicit_tls=tls == "tls")
    smtp.start()
    settings = sender_settings(
        amqp_url,
        redis_url,
        pg_url,
        exchange,
        email={
            "smtp_port": smtp.port,
            "tls": tls,
            "ca_file": str(cert),
            "username": "fmn",
            "password": "s3cret",
        },
    )
    try:
        async with running("email", settings):
            await publish(broker, exchange, make_item("email", "alice@example.org"))
            await eventually(lambda: smtp.received)
    finally:
        smtp.stop()


# ---- team rules: a group's mailing list -------------------------------------------------------


async def test_a_team_list_gets_its_code_then_the_group_rules_mail_without_unsubscribe(
    email_settings: Settings, broker: Broker, smtp: SMTPServer, exchange: str
) -> None:
    """A mailing list is told its verification code, then a team rule's notifications: no
    one-click unsubscribe (a reader of the list does not own the group's rule) and a footer
    naming the group, not "your rule"."""
    address = "python-devel@lists.example.org"
    code_item = verification_item(
        "python-sig", "email", address, "ABCD2345", "https://notifications.example.org", SENT_AT
    )
    rule_item = make_item(
        "email", address, user="group:python-sig", rules=[RuleRef(id=7, name="Python builds")]
    )
    async with running("email", email_settings):
        await publish(broker, exchange, code_item)
        await eventually(lambda: smtp.received)
        await publish(broker, exchange, rule_item)
        await eventually(lambda: len(smtp.received) == 2)
    code_mail, rule_mail = (r.message for r in smtp.received)
    assert [r.rcpt_tos for r in smtp.received] == [[address], [address]]

    assert (
        code_mail["Subject"] == "[Fedora Notifications] Verification code for the group python-sig"
    )
    code_text = code_mail.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    assert (
        "ABCD2345" in code_text
        and "https://notifications.example.org/teams/python-sig" in code_text
    )
    assert code_text.rstrip().endswith("-- \nSent by Fedora Notifications.")
    assert code_mail["List-Unsubscribe"] is None

    # One rule: a user's mail would carry the one-click link (test_delivery_with_every_header's
    # neighbours); the group's does not.
    assert rule_mail["List-Unsubscribe"] is None and rule_mail["List-Unsubscribe-Post"] is None
    text = rule_mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = rule_mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert rule_item.message.summary in text
    assert "because of the rule(s) of the group python-sig:" in text
    assert '"Python builds": https://notifications.example.org/rules/7' in text
    assert "your rule" not in text and "your rule" not in html
    assert "because of the rule(s) of the group python-sig:" in html


async def test_a_team_item_queued_before_the_team_field_still_mails_as_the_groups(
    email_settings: Settings, broker: Broker, smtp: SMTPServer, exchange: str
) -> None:
    """An item the consumer packed before work items carried `team` (only the owner's name,
    group:<name>) is still framed as the group's: no unsubscribe link, the group's footer."""
    address = "python-devel@lists.example.org"
    item = make_item(
        "email", address, user="group:python-sig", rules=[RuleRef(id=7, name="Python builds")]
    )
    written = json.loads(item.to_bytes())
    assert written.pop("team") == "python-sig"
    async with running("email", email_settings):
        await publish(broker, exchange, json.dumps(written).encode(), protocol="email")
        await eventually(lambda: smtp.received)
    mail = smtp.received[0].message
    assert mail["List-Unsubscribe"] is None
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "because of the rule(s) of the group python-sig:" in text
    assert "your rule" not in text

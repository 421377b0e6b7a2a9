"""Which modules of fmn/ run for one bus message on its way from the consumer's queue to the SMTP
server (docs/architecture.md, "Module by module, to an email"): prints each module with the
functions of it that ran, then their number.

    .venv/bin/python -m bench.message_path [--amqp] [--redis redis://127.0.0.1:6379/3]

In one process: the consumer and the email sender, on the in-process broker (or, with --amqp,
on RabbitMQ in a vhost of their own), SQLite, the sender's state in Redis and an SMTP server
(aiosmtpd). The rule: one related-events rule of alice's, to her email address. Periodic work
(flushing counts and the delivery log, pruning, rebuilding) is set to once an hour, out of the
way: it is not part of the message's way. A first message warms everything up; the second is
traced (sys.setprofile, every Python function call) from its publication until the SMTP server
has the mail and the sender has marked it sent.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import sys
import tempfile
import uuid
from pathlib import Path
from types import FrameType
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

import fmn
from fmn.consumer.service import Consumer
from fmn.core.settings import Settings
from fmn.db import migrations
from fmn.db.session import make_engine, make_sessionmaker
from fmn.directory.local import DirectoryData, LocalDirectory
from fmn.rules import schema, transfer
from fmn.senders.service import run_sender
from fmn.transport import Outgoing, make_broker

PACKAGE = Path(fmn.__file__).resolve().parent
RULE = {
    "id": 1,
    "name": "mine",
    "user": {"name": "alice"},
    "tracking_rule": {"name": "related-events", "params": None},
    "generation_rules": [
        {"destinations": [{"protocol": "email", "address": "alice@example.org"}], "filters": {}}
    ],
}
DIRECTORY = {
    "users": {"alice": {"username": "alice", "emails": ["alice@example.org"], "ircnicks": []}},
    "groups": {},
    "projects": {},
}


class Inbox:
    def __init__(self) -> None:
        self.mails: asyncio.Queue[bytes] = asyncio.Queue()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content or b""
        self.mails.put_nowait(content.encode() if isinstance(content, str) else content)
        return "250 OK"


def message() -> Outgoing:
    """A message of an unknown schema: its users come from its headers (alice among them)."""
    body = {"comment": {"text": "looks good"}, "agent": "bob"}
    return Outgoing(
        "org.fedoraproject.prod.bodhi.update.comment",
        json.dumps(body).encode(),
        message_id=str(uuid.uuid4()),
        headers={"fedora_messaging_user_alice": True, "sent-at": "2024-05-01T12:00:00+00:00"},
    )


async def trace(bus: str, database: str, redis: str) -> dict[str, set[str]]:
    inbox = Inbox()
    loop = asyncio.get_running_loop()
    smtp = await loop.create_server(lambda: SMTP(inbox), "127.0.0.1", 0)
    port = smtp.sockets[0].getsockname()[1]
    hour = 3600
    settings = Settings(
        public_url="https://notifications.example.org",
        database={"url": database},
        bus={"amqp_url": bus},
        send_queue={"amqp_url": bus, "retry_delays": [1]},
        senders={
            "state_url": redis,
            "log_flush_interval": hour,
            "email": {"smtp_host": "127.0.0.1", "smtp_port": port, "tls": "none"},
        },
        api={"secret_keys": ["path-tracing-key-" + "x" * 32]},
        consumer={
            "counts_interval": hour,
            "unmute_interval": hour,
            "rebuild_interval": hour,
            "batch_wait": 0.001,
        },
        archive={"prune_interval": hour},
    )
    engine = make_engine(settings.database)
    sessionmaker = make_sessionmaker(engine)
    async with sessionmaker.begin() as session:
        await transfer.import_rules(session, [schema.Rule.model_validate(RULE)])
    broker = make_broker(bus, "message path")
    await broker.connect()
    directory = LocalDirectory(DirectoryData.model_validate(DIRECTORY))
    consumer = Consumer(settings, directory=directory, sessionmaker=sessionmaker, bus=broker)
    await consumer.start()
    consuming = asyncio.create_task(consumer.run())
    stop = asyncio.Event()
    sending = asyncio.create_task(run_sender("email", settings, stop))

    async def one() -> None:
        await broker.publish_many("amq.topic", [message()])
        await asyncio.wait_for(inbox.mails.get(), 30)
        await asyncio.sleep(0.5)  # the mark and the ack after the send

    await one()
    calls: dict[str, set[str]] = collections.defaultdict(set)

    def profile(frame: FrameType, event: str, _arg: Any) -> None:
        if event == "call":
            path = Path(frame.f_code.co_filename)
            if path.is_relative_to(PACKAGE):
                calls[str(path.relative_to(PACKAGE.parent))].add(frame.f_code.co_name)

    sys.setprofile(profile)
    try:
        await one()
    finally:
        sys.setprofile(None)
    stop.set()
    await consumer.stop()
    await asyncio.gather(sending, consuming, return_exceptions=True)
    await broker.close()
    await engine.dispose()
    smtp.close()
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--amqp", action="store_true", help="RabbitMQ instead of memory://")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/3")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    database = f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/path.sqlite"
    migrations.upgrade(database)
    vhost = None
    bus = "memory://message-path"
    if args.amqp:
        from tests.harness import services

        vhost, bus = services.create_vhost()
    try:
        calls = asyncio.run(trace(bus, database, args.redis))
    finally:
        if vhost is not None:
            services.delete_vhost(vhost)
    for module in sorted(calls):
        print(f"{module}: {', '.join(sorted(calls[module]))}")
    print(f"{len(calls)} modules")


if __name__ == "__main__":
    main()

"""The SMTP sink of the embedded run: aiosmtpd on a local port, in the running event loop. It
accepts every mail and keeps it in the outbox, where the web app reads it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from fmn.dev.outbox import Outbox

log = logging.getLogger(__name__)


class _Keep:
    """aiosmtpd's handler: every mail accepted into the outbox."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        raw = content if isinstance(content, bytes) else content.encode()
        mail = self.outbox.add_mail(raw, envelope.mail_from or "", envelope.rcpt_tos)
        log.info("mail to %s: %s", ", ".join(mail.recipients), mail.subject)
        return "250 Message accepted for delivery"


class MailSink:
    def __init__(self, outbox: Outbox, host: str = "127.0.0.1", port: int = 0) -> None:
        self.outbox = outbox
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._sessions: set[SMTP] = set()

    async def start(self) -> None:
        handler = _Keep(self.outbox)
        loop = asyncio.get_running_loop()

        def protocol() -> Any:
            session = SMTP(handler, hostname="fmn-dev-sink", enable_SMTPUTF8=True, loop=loop)
            self._sessions.add(session)
            return session

        self._server = await loop.create_server(protocol, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            # Connections a client keeps open (the email sender's pool) would hold the server.
            for session in self._sessions:
                if session.transport is not None:
                    session.transport.close()
            self._sessions.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

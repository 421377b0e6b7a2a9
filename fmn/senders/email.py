"""The email sender: SMTP through aiosmtplib, over a pool of kept-open connections (plain,
STARTTLS or TLS, with optional login)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging

import aiosmtplib

from fmn.core.settings import EmailSenderSettings
from fmn.senders import email_message
from fmn.senders.digest import Digest
from fmn.senders.email_message import MailSettings
from fmn.senders.errors import PermanentError, TransientError
from fmn.senders.handler import Handler
from fmn.sendqueue.workitem import WorkItem

log = logging.getLogger(__name__)


def _refusal(code: int, message: str) -> Exception:
    text = f"SMTP {code}: {' '.join(message.split())[:300]}"
    return PermanentError(text) if 500 <= code < 600 else TransientError(text)


class EmailHandler(Handler):
    protocol = "email"

    def __init__(self, settings: EmailSenderSettings, mail: MailSettings) -> None:
        self.settings = settings
        self.mail = mail
        self.concurrency = max(1, settings.connections)
        self._pool: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()
        for _ in range(self.concurrency):
            self._pool.put_nowait(self._client())

    def _client(self) -> aiosmtplib.SMTP:
        s = self.settings
        return aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.username,
            password=s.password,
            use_tls=s.tls == "tls",
            start_tls=s.tls == "starttls",
            timeout=s.timeout,
            validate_certs=s.validate_certs,
            cert_bundle=s.ca_file,
        )

    async def stop(self) -> None:
        while not self._pool.empty():
            client = self._pool.get_nowait()
            if client.is_connected:
                with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                    await client.quit()

    def check_address(self, address: str) -> None:
        email_message.check_address(address)

    async def send(self, item: WorkItem) -> None:
        await self._deliver(email_message.build_notification(item, self.mail), item.address)

    async def send_digest(self, digest: Digest) -> None:
        now = dt.datetime.now(dt.UTC)
        await self._deliver(email_message.build_digest(digest, self.mail, now), digest.address)

    async def _deliver(self, msg: bytes, recipient: str) -> None:
        client = await self._pool.get()
        try:
            await self._on(client, msg, recipient)
        finally:
            self._pool.put_nowait(client)

    async def _on(self, client: aiosmtplib.SMTP, msg: bytes, recipient: str) -> None:
        # A kept-open connection may have been closed by the server meanwhile: one fresh retry.
        for fresh in (False, True):
            try:
                if not client.is_connected:
                    await client.connect()
                    fresh = True
                await client.sendmail(self.mail.envelope_from, [recipient], msg)
                return
            except aiosmtplib.SMTPRecipientsRefused as exc:
                refused = exc.recipients[0]
                raise _refusal(refused.code, refused.message) from exc
            except aiosmtplib.SMTPServerDisconnected as exc:
                client.close()
                if fresh:
                    raise TransientError(f"SMTP server disconnected: {exc}") from exc
            except aiosmtplib.SMTPResponseException as exc:
                if exc.code == 421:  # the server is closing the connection
                    client.close()
                raise _refusal(exc.code, exc.message) from exc
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                client.close()
                raise TransientError(f"SMTP: {exc!r}") from exc

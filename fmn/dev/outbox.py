"""What the embedded run delivered: the mails the SMTP sink received and the IRC and Matrix
messages the stand-in senders logged, the latest few hundred, in memory, for the web app."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import itertools
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass
from email.message import EmailMessage


@dataclass(frozen=True)
class Mail:
    id: int
    received_at: dt.datetime
    mail_from: str
    recipients: tuple[str, ...]
    subject: str
    text: str
    # The HTML part as the sender wrote it; show it only sandboxed (it is mail, not our page).
    html: str | None
    raw: bytes


@dataclass(frozen=True)
class ChatMessage:
    id: int
    sent_at: dt.datetime
    protocol: str
    address: str
    text: str
    html: str | None


def _part(message: EmailMessage, subtype: str) -> str | None:
    part = message.get_body(preferencelist=(subtype,))
    if part is None:
        return None
    content = part.get_content()
    return content if isinstance(content, str) else None


class Outbox:
    def __init__(self, size: int = 500) -> None:
        self.mail: deque[Mail] = deque(maxlen=size)
        self.chat: deque[ChatMessage] = deque(maxlen=size)
        self._ids = itertools.count(1)

    def add_mail(self, raw: bytes, mail_from: str, recipients: Collection[str]) -> Mail:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        mail = Mail(
            id=next(self._ids),
            received_at=dt.datetime.now(dt.UTC),
            mail_from=mail_from,
            recipients=tuple(recipients),
            subject=str(message.get("Subject", "")),
            text=_part(message, "plain") or "",
            html=_part(message, "html"),
            raw=raw,
        )
        self.mail.append(mail)
        return mail

    def add_chat(self, protocol: str, address: str, text: str, html: str | None) -> ChatMessage:
        line = ChatMessage(next(self._ids), dt.datetime.now(dt.UTC), protocol, address, text, html)
        self.chat.append(line)
        return line

    def mail_to(self, addresses: Collection[str]) -> list[Mail]:
        """Mails to any of these addresses (case-insensitively), newest first."""
        wanted = {a.lower() for a in addresses}
        return [m for m in reversed(self.mail) if wanted & {r.lower() for r in m.recipients}]

    def chat_to(self, destinations: Collection[tuple[str, str]]) -> list[ChatMessage]:
        """IRC and Matrix messages to any of these (protocol, address) pairs, newest first."""
        wanted = set(destinations)
        return [c for c in reversed(self.chat) if (c.protocol, c.address) in wanted]

"""Notifications for a matched message: one WorkItem (fmn/workitem.py) per destination, its
text written here once: the email's subject, text, HTML and metadata, the IRC line, the Matrix
line and HTML, the web inbox's subject and text. Only messages that matched get here, and a
message's parts are written once for all its notifications.

Content follows FMN 3 (reference §2.4): email subject "[app] summary", text `str(message)` then
the url, a footer naming the rule(s) with a link to each (the email sender's, as it knows the
links); IRC and Matrix get one line "[app] summary url". fmn adds an HTML part and metadata for
mail filters.

Everything read from a bus message is untrusted: it goes through fmn.notify.text (no line
break or other control, no bidi control in a one-line field; http(s) links only; sizes capped)
and is escaped in HTML, so it cannot add an email header, an IRC command or markup.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fmn.notify.text import (
    EMAIL_TEXT_LIMIT,
    FIELD_LIMIT,
    IRC_LINE_BYTES,
    LIST_LIMIT,
    MATRIX_TEXT_LIMIT,
    METADATA_LIMIT,
    NAME_LIMIT,
    SUBJECT_LIMIT,
    cut,
    line,
    multi_line,
    one_line,
    rule_label,
    safe_url,
)
from fmn.rules.filters import SEVERITY_LEVELS
from fmn.sendqueue.workitem import (
    ChatContent,
    EmailContent,
    MessageInfo,
    RuleRef,
    WebContent,
    WorkItem,
    idempotency_key,
)

if TYPE_CHECKING:
    from fmn.rules.compiled import CompiledRule
    from fmn.rules.incoming import ParsedMessage
    from fmn.rules.index import Match

_SEVERITY_NAMES = {level: name for name, level in SEVERITY_LEVELS.items()}


def _cut_bytes(value: str, limit: int) -> str:
    encoded = value.encode()
    if len(encoded) <= limit:
        return value
    return encoded[: limit - 3].decode(errors="ignore").rstrip() + "…"


@dataclass(frozen=True)
class _Content:
    """The parts of a message's notifications that do not depend on the destination, each
    written once for all of them."""

    info: MessageInfo
    text: str
    metadata: dict[str, str]
    line: str  # "[app] summary url"

    @classmethod
    def of(cls, message: ParsedMessage) -> _Content:
        app = one_line(message.app_name, NAME_LIMIT) if message.app_name else ""
        info = MessageInfo(
            id=message.id,
            topic=one_line(message.topic, METADATA_LIMIT),
            sent_at=message.sent_at,
            app_name=app or None,
            agent_name=(one_line(message.agent_name, FIELD_LIMIT) if message.agent_name else None),
            summary=one_line(message.summary, SUBJECT_LIMIT),
            url=safe_url(message.url),
            severity=message.severity,
            usernames=[one_line(u, FIELD_LIMIT) for u in message.usernames[:LIST_LIMIT]],
            packages=[one_line(p, FIELD_LIMIT) for p in message.packages[:LIST_LIMIT]],
        )
        # Made of one-line fields already, so only cut (the severity name is fmn's own).
        metadata = {
            "Topic": info.topic,
            "Application": app,
            "Severity": _SEVERITY_NAMES.get(message.severity, str(message.severity)),
            "Packages": cut(", ".join(info.packages), METADATA_LIMIT),
            "Users": cut(", ".join(info.usernames), METADATA_LIMIT),
        }
        return cls(
            info=info,
            text=multi_line(message.text, EMAIL_TEXT_LIMIT),
            metadata={k: v for k, v in metadata.items() if v},
            line=line(info),
        )

    def email(self, rules: Sequence[CompiledRule]) -> EmailContent:
        # The footer naming the rules, with links to edit them and to unsubscribe, is the email
        # sender's: it writes it for single mails and digests alike.
        metadata = dict(self.metadata)
        metadata["Rules"] = cut(", ".join(rule_label(rule) for rule in rules), METADATA_LIMIT)
        return EmailContent(
            subject=self._subject, text=self._email_text, html=self._email_html, metadata=metadata
        )

    @functools.cached_property
    def _subject(self) -> str:
        app = f"[{self.info.app_name}]" if self.info.app_name else ""
        subject = " ".join(part for part in (app, self.info.summary) if part)
        return cut(subject, SUBJECT_LIMIT)

    @functools.cached_property
    def _email_text(self) -> str:
        return self.text + (f"\n{self.info.url}" if self.info.url else "") + "\n"

    @functools.cached_property
    def _email_html(self) -> str:
        esc = html.escape
        parts = [
            "<!DOCTYPE html>",
            '<html><head><meta charset="utf-8"></head><body>',
            f'<pre style="white-space: pre-wrap">{esc(self.text)}</pre>',
        ]
        if self.info.url:
            parts.append(f'<p><a href="{esc(self.info.url)}">{esc(self.info.url)}</a></p>')
        parts.append("</body></html>")
        return "\n".join(parts)

    @functools.cached_property
    def web(self) -> WebContent:
        # The page escapes both when it shows them; the link is the message's (safe_url).
        return WebContent(subject=self._subject, text=self.text)

    @functools.cached_property
    def irc(self) -> ChatContent:
        return ChatContent(text=_cut_bytes(self.line, IRC_LINE_BYTES))

    @functools.cached_property
    def matrix(self) -> ChatContent:
        esc = html.escape
        url = self.info.url
        app = self.info.app_name
        link = f' <a href="{esc(url)}">{esc(url)}</a>' if url else ""
        # Escaped here; the Matrix sender's sanitizer (matrix_html) is the second lock.
        markup = (f"[{esc(app)}] " if app else "") + esc(self.info.summary) + link
        return ChatContent(text=cut(self.line, MATRIX_TEXT_LIMIT), html=markup)


def build_work_items(message: ParsedMessage, matches: Sequence[Match]) -> list[WorkItem]:
    """One work item per match."""
    if not matches:
        return []
    content = _Content.of(message)
    items = []
    for match in matches:
        email = chat = web = None
        if match.protocol == "email":
            email = content.email(match.rules)
        elif match.protocol == "irc":
            chat = content.irc
        elif match.protocol == "web":
            web = content.web
        else:
            chat = content.matrix
        items.append(
            WorkItem(
                key=idempotency_key(message.id, match.protocol, match.address),
                protocol=match.protocol,
                address=match.address,
                user=match.user,
                rules=[RuleRef(id=rule.id, name=rule.name) for rule in match.rules],
                message=content.info,
                email=email,
                chat=chat,
                web=web,
            )
        )
    return items

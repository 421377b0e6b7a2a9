"""Notifications for a matched message: one WorkItem (fmn/sendqueue/workitem.py) per destination.

Content follows FMN 3 (reference §2.4): email subject "[app] summary", text `str(message)` then
the url, a footer naming the rule(s) with a link to each; IRC and Matrix get one line
"[app] summary url". fmn adds an HTML part and metadata for mail filters.

Everything read from a bus message is untrusted: it is escaped in HTML, and nothing with a line
break or other control character reaches a one-line field (subject, metadata, chat line), so it
cannot add an email header or an IRC command. Links are kept only for http(s) URLs. Sizes are
capped, so a multi-megabyte body does not become a multi-megabyte mail.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import nh3

from fmn.rules.compiled import CompiledRule
from fmn.rules.filters import SEVERITY_LEVELS
from fmn.rules.index import Match
from fmn.rules.message import ParsedMessage
from fmn.sendqueue.workitem import (
    ChatContent,
    EmailContent,
    MessageInfo,
    RuleRef,
    WorkItem,
    idempotency_key,
)

SUBJECT_LIMIT = 250
METADATA_LIMIT = 500
EMAIL_TEXT_LIMIT = 256 * 1024
IRC_LINE_BYTES = 400  # of the 512 an IRC line may have, leave room for "PRIVMSG nick :"
MATRIX_TEXT_LIMIT = 2000
LIST_LIMIT = 200
URL_LIMIT = 2048

# Line breaks and every other C0/C1 control, plus Unicode line separators and the bidi controls
# that can make a line display as something else than it is.
_ONE_LINE_BREAKERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]+")
_SPACES = re.compile(r" {2,}")
# In multi-line text: controls but tab and newline (carriage returns are turned into newlines).
_TEXT_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SEVERITY_NAMES = {level: name for name, level in SEVERITY_LEVELS.items()}
_MATRIX_TAGS = {"a"}


def one_line(value: str, limit: int) -> str:
    """Control characters become spaces; cut to `limit` characters with an ellipsis."""
    value = _SPACES.sub(" ", _ONE_LINE_BREAKERS.sub(" ", value)).strip()
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


def clean_text(value: str, limit: int) -> str:
    """Multi-line text without control characters, cut to `limit` characters."""
    value = value.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n")
    value = _TEXT_CONTROLS.sub("", value.replace("\u2029", "\n"))
    if len(value) > limit:
        value = value[:limit] + "\n[… cut: the message is too long]"
    return value


def safe_url(value: str | None) -> str | None:
    """The URL if it is a plain http(s) link fit for a line and an href; None otherwise."""
    if not value or len(value) > URL_LIMIT or _ONE_LINE_BREAKERS.search(value) or " " in value:
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    return value if parts.scheme in ("http", "https") and parts.netloc else None


def _cut_bytes(value: str, limit: int) -> str:
    encoded = value.encode()
    if len(encoded) <= limit:
        return value
    return encoded[: limit - 3].decode(errors="ignore").rstrip() + "…"


@dataclass(frozen=True)
class _Content:
    """The parts of a message's notifications that do not depend on the destination."""

    prefix: str  # "[app] " or ""
    summary: str
    url: str | None
    text: str
    info: MessageInfo
    metadata: dict[str, str]

    @classmethod
    def of(cls, message: ParsedMessage) -> _Content:
        app = one_line(message.app_name, 100) if message.app_name else ""
        summary = one_line(message.summary, SUBJECT_LIMIT)
        url = safe_url(message.url)
        metadata = {
            "Topic": message.topic,
            "Application": app,
            "Severity": _SEVERITY_NAMES.get(message.severity, str(message.severity)),
            "Packages": ", ".join(message.packages[:LIST_LIMIT]),
            "Users": ", ".join(message.usernames[:LIST_LIMIT]),
        }
        return cls(
            prefix=f"[{app}] " if app else "",
            summary=summary,
            url=url,
            text=clean_text(message.text, EMAIL_TEXT_LIMIT),
            info=MessageInfo(
                id=message.id,
                topic=one_line(message.topic, METADATA_LIMIT),
                sent_at=message.sent_at,
                app_name=app or None,
                agent_name=one_line(message.agent_name, 255) if message.agent_name else None,
                summary=summary,
                url=url,
                severity=message.severity,
                usernames=[one_line(u, 255) for u in message.usernames[:LIST_LIMIT]],
                packages=[one_line(p, 255) for p in message.packages[:LIST_LIMIT]],
            ),
            metadata={k: one_line(v, METADATA_LIMIT) for k, v in metadata.items() if v},
        )

    def line(self) -> str:
        return f"{self.prefix}{self.summary}" + (f" {self.url}" if self.url else "")

    def email(self, rules: Sequence[CompiledRule]) -> EmailContent:
        # The footer naming the rules, with links to edit them and to unsubscribe, is the email
        # sender's: it writes it for single mails and digests alike.
        text = self.text + (f"\n{self.url}" if self.url else "") + "\n"
        metadata = dict(self.metadata)
        labels = ", ".join(_rule_label(rule) for rule in rules)
        metadata["Rules"] = one_line(labels, METADATA_LIMIT)
        return EmailContent(
            subject=one_line(self.prefix + self.summary, SUBJECT_LIMIT),
            text=text,
            html=self._email_html(),
            metadata=metadata,
        )

    def _email_html(self) -> str:
        esc = html.escape
        parts = [
            "<!DOCTYPE html>",
            '<html><head><meta charset="utf-8"></head><body>',
            f'<pre style="white-space: pre-wrap">{esc(self.text)}</pre>',
        ]
        if self.url:
            parts.append(f'<p><a href="{esc(self.url)}">{esc(self.url)}</a></p>')
        parts.append("</body></html>")
        return "\n".join(parts)

    def irc(self) -> ChatContent:
        return ChatContent(text=_cut_bytes(self.line(), IRC_LINE_BYTES))

    def matrix(self) -> ChatContent:
        esc = html.escape
        link = f' <a href="{esc(self.url)}">{esc(self.url)}</a>' if self.url else ""
        markup = f"{esc(self.prefix)}{esc(self.summary)}{link}"
        return ChatContent(
            text=one_line(self.line(), MATRIX_TEXT_LIMIT),
            # Built escaped already; the sanitizer is the second lock on the door.
            html=nh3.clean(
                markup, tags=_MATRIX_TAGS, attributes={"a": {"href"}}, url_schemes={"http", "https"}
            ),
        )


def _rule_label(rule: CompiledRule) -> str:
    return f'"{one_line(rule.name, 100)}"' if rule.name else f"#{rule.id}"


def build_work_items(message: ParsedMessage, matches: Sequence[Match]) -> list[WorkItem]:
    """One work item per match."""
    if not matches:
        return []
    content = _Content.of(message)
    items = []
    for match in matches:
        email = chat = None
        if match.protocol == "email":
            email = content.email(match.rules)
        elif match.protocol == "irc":
            chat = content.irc()
        else:
            chat = content.matrix()
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
            )
        )
    return items

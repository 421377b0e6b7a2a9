"""A notification's text, in one place: written once per notification by the consumer (from
the bus message), with one set of rules that keeps it safe and the one-line forms that digests
and footers reuse. Senders only frame what was written for their protocol, and import this
module without the rule engine.

Writing (`build_work_items`): for a matched message, one WorkItem (fmn/sendqueue/workitem.py)
per destination, its text written once: the email's subject, text, HTML and metadata, the IRC
line, the Matrix line and HTML, the web inbox's subject and text. Only messages that matched get
here, and a message's parts are written once for all its notifications.

Content follows FMN 3 (reference §2.4): email subject "[app] summary", text `str(message)` then
the url, a footer naming the rule(s) with a link to each (the email sender's, as it knows the
links); IRC and Matrix get one line "[app] summary url". fmn adds an HTML part and metadata for
mail filters.

Everything read from a bus message is untrusted: it goes through the rules below (no line
break or other control, no bidi control in a one-line field; http(s) links only; sizes capped)
and is escaped in HTML, so it cannot add an email header, an IRC command or markup.

The rules (`one_line`, `multi_line`, `safe_url`, `mail_html`, ...) are applied once when a
notification is written. A sender applies the same rule again only at the edge of its
protocol's frame (an email header, an IRC line, a Matrix message, HTML handed to a client),
where a hand-made or older work item must not break the frame either; on text written here it
changes nothing.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, overload
from urllib.parse import urlsplit

import nh3

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
    from fmn.rules.incoming import ParsedMessage
    from fmn.rules.index import CompiledRule, Match

SUBJECT_LIMIT = 250
METADATA_LIMIT = 500  # one X-Fedora-Notify-* header value
NAME_LIMIT = 100  # an application's or a rule's name
FIELD_LIMIT = 255  # a username, a package, an agent
LIST_LIMIT = 200  # usernames or packages kept per message
URL_LIMIT = 2048
EMAIL_TEXT_LIMIT = 256 * 1024
IRC_LINE_BYTES = 400  # of the 512 an IRC line may have, leave room for "PRIVMSG nick :"
MATRIX_TEXT_LIMIT = 2000

# What ends a line anywhere: CR, LF, tab, vertical tab, form feed, the information separators
# Python's splitlines breaks at, NEL and the Unicode line and paragraph separators.
_BREAKS = r"\t\n\x0b\x0c\r\x1c-\x1e\x85\u2028\u2029"
# What is invisible or changes how the rest displays: the other C0 and C1 controls, DEL, and
# the bidi marks, embeddings, overrides and isolates (a line could show as something else
# than it is).
_INVISIBLE = r"\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"

_ONE_LINE_BREAKS = re.compile(f"[{_BREAKS}]+")
_TEXT_BREAKS = re.compile(r"\r\n?|[\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")  # tabs and newlines stay
_INVISIBLES = re.compile(f"[{_INVISIBLE}]+")
_SPACES = re.compile(r" {2,}")
_TOO_LONG = "\n[… cut: the message is too long]"

# The HTML subset Matrix clients render (client-server spec, m.room.message "HTML").
MATRIX_TAGS = {
    "font", "del", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "p", "a", "ul", "ol",
    "sup", "sub", "li", "b", "i", "u", "strong", "em", "strike", "code", "hr", "br", "div",
    "table", "thead", "tbody", "tr", "th", "td", "caption", "pre", "span",
}  # fmt: skip
MATRIX_ATTRIBUTES = {"a": {"href"}, "code": {"class"}}


def one_line(value: str, limit: int | None = None) -> str:
    """Line breaks become one space, other controls and bidi controls are dropped, runs of
    spaces become one; cut to `limit` characters with an ellipsis."""
    if not value.isprintable():  # the common case has nothing to take out
        value = _INVISIBLES.sub("", _ONE_LINE_BREAKS.sub(" ", value))
    if "  " in value:
        value = _SPACES.sub(" ", value)
    value = value.strip()
    return value if limit is None else cut(value, limit)


def cut(value: str, limit: int) -> str:
    """A line cut to `limit` characters, the last one an ellipsis when it was longer."""
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


def multi_line(value: str, limit: int) -> str:
    """Multi-line text: every line break becomes a newline, other controls and bidi controls
    are dropped (tabs stay); cut to `limit` characters with a note."""
    # Cut first: a message of megabytes is not cleaned whole to keep its first 256 KiB.
    too_long = len(value) > limit
    if too_long:
        value = value[:limit]
    value = _INVISIBLES.sub("", _TEXT_BREAKS.sub("\n", value))
    return value + _TOO_LONG if too_long else value


def safe_url(value: str | None) -> str | None:
    """The URL if it is a plain http(s) link fit for a line and an href; None otherwise."""
    if not value or len(value) > URL_LIMIT or not value.isprintable() or " " in value:
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    return value if parts.scheme in ("http", "https") and parts.netloc else None


def mail_html(markup: str) -> str:
    """HTML fit for a mail: nh3's safe defaults (no scripts, styles or event handlers)."""
    return nh3.clean(_INVISIBLES.sub("", markup))


def matrix_html(markup: str) -> str:
    """HTML fit for a Matrix message: the subset Matrix clients render, http(s) and mailto
    links only."""
    return nh3.clean(
        _INVISIBLES.sub("", markup),
        tags=MATRIX_TAGS,
        attributes=MATRIX_ATTRIBUTES,
        url_schemes={"https", "http", "mailto"},
        link_rel="noopener noreferrer",
    )


# ---- the one-line forms, written from a work item's (already safe) fields --------------------


class _Rule(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str | None: ...


def line(message: MessageInfo) -> str:
    """ "[app] summary url", without the parts the message does not have."""
    app = f"[{message.app_name}]" if message.app_name else ""
    return " ".join(part for part in (app, message.summary, message.url) if part)


def line_html(message: MessageInfo) -> str:
    """ "[app] summary", the summary linked to the message's URL, as HTML."""
    summary = html.escape(message.summary)
    if message.url:
        summary = f'<a href="{html.escape(message.url)}">{summary}</a>'
    return f"[{html.escape(message.app_name)}] {summary}" if message.app_name else summary


def rule_label(rule: _Rule) -> str:
    """ "name" in quotes, or #id for a rule without a name."""
    return f'"{one_line(rule.name, NAME_LIMIT)}"' if rule.name else f"#{rule.id}"


# ---- writing a matched message's notifications ---------------------------------------------


def _cut_bytes(value: str, limit: int) -> str:
    encoded = value.encode()
    if len(encoded) <= limit:
        return value
    return encoded[: limit - 3].decode(errors="ignore").rstrip() + "…"


_T = TypeVar("_T")


class _once(Generic[_T]):
    """functools.cached_property without the lock Python 3.11's takes on every first read: a
    message's notifications read five or six parts once each (docs/performance.md)."""

    def __init__(self, func: Callable[[Any], _T]) -> None:
        self.func = func
        self.name = func.__name__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> _once[_T]: ...
    @overload
    def __get__(self, instance: object, owner: type | None = None) -> _T: ...
    def __get__(self, instance: object | None, owner: type | None = None) -> _T | _once[_T]:
        if instance is None:
            return self
        # Kept in the instance's __dict__, which Python reads before this descriptor from now on.
        value = instance.__dict__[self.name] = self.func(instance)
        return value


class _Content:
    """The parts of a message's notifications that do not depend on the destination, each
    written once for all of them, and only when a notification needs it (an IRC line needs no
    long text, an email no chat line). The work item's models are validated as they are built:
    pydantic's model_construct, which skips that, measured slower (it is Python, validation is
    Rust)."""

    def __init__(self, message: ParsedMessage) -> None:
        self.message = message
        app = one_line(message.app_name, NAME_LIMIT) if message.app_name else ""
        self.app = app
        self.info = MessageInfo(
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

    @_once
    def text(self) -> str:
        return multi_line(self.message.text, EMAIL_TEXT_LIMIT)

    @_once
    def line(self) -> str:
        """ "[app] summary url" """
        return line(self.info)

    @_once
    def metadata(self) -> dict[str, str]:
        info, message = self.info, self.message
        # Made of one-line fields already, so only cut (the severity name is fmn's own).
        metadata = {
            "Topic": info.topic,
            "Application": self.app,
            "Severity": message.severity_name,
            "Packages": cut(", ".join(info.packages), METADATA_LIMIT),
            "Users": cut(", ".join(info.usernames), METADATA_LIMIT),
        }
        return {k: v for k, v in metadata.items() if v}

    def email(self, rules: Sequence[CompiledRule]) -> EmailContent:
        # The footer naming the rules, with links to edit them and to unsubscribe, is the email
        # sender's: it writes it for single mails and digests alike.
        metadata = dict(self.metadata)
        metadata["Rules"] = cut(", ".join(rule_label(rule) for rule in rules), METADATA_LIMIT)
        return EmailContent(
            subject=self._subject, text=self._email_text, html=self._email_html, metadata=metadata
        )

    @_once
    def _subject(self) -> str:
        app = f"[{self.info.app_name}]" if self.info.app_name else ""
        subject = " ".join(part for part in (app, self.info.summary) if part)
        return cut(subject, SUBJECT_LIMIT)

    @_once
    def _email_text(self) -> str:
        return self.text + (f"\n{self.info.url}" if self.info.url else "") + "\n"

    @_once
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

    @_once
    def web(self) -> WebContent:
        # The page escapes both when it shows them; the link is the message's (safe_url).
        return WebContent(subject=self._subject, text=self.text)

    @_once
    def irc(self) -> ChatContent:
        return ChatContent(text=_cut_bytes(self.line, IRC_LINE_BYTES))

    @_once
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
    content = _Content(message)
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
                team=match.rules[0].team,  # the first rule's, as the user is its owner
                rules=[RuleRef(id=rule.id, name=rule.name) for rule in match.rules],
                message=content.info,
                email=email,
                chat=chat,
                web=web,
            )
        )
    return items

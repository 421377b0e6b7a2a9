"""A notification's text as every protocol shares it: the one set of rules that keeps text
from a bus message safe, the limits on its size, and the one-line forms that every chat
protocol and every digest shows ("[app] summary url", a rule's label).

The rules are applied once when a notification is written (fmn.notify.render). A sender
applies the same rule again only at the edge of its protocol's frame (an email header, an IRC
line, a Matrix message, HTML handed to a client), where a hand-made or older work item must not
break the frame either; on text written here it changes nothing.
"""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

import nh3

if TYPE_CHECKING:
    from fmn.sendqueue.workitem import MessageInfo

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

"""A notification's one-line forms, written from its work item: the line every chat protocol
and every digest shows ("[app] summary url"), its HTML for digests, and a rule's label. The
consumer writes a chat line with them; senders write digests and footers with them. The work
item's fields were made safe when it was written (fmn.notify.render)."""

from __future__ import annotations

import html
from typing import Protocol

from fmn.notify.sanitize import NAME_LIMIT, one_line
from fmn.workitem import MessageInfo


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

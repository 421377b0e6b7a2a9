"""Framing notification mails: the text written by fmn.notify becomes headers and a
multipart/alternative body, with the sender's footer (links to the rules and to unsubscribe).

Every header value passes text.one_line at the frame's edge (a no-op on written text, a
guard against any other) and the MIME writer refuses one that still carries a line break, so
nothing in a work item can add a header; HTML passes text.mail_html."""

from __future__ import annotations

import datetime as dt
import email.utils
import functools
import hashlib
import html
import re
from dataclasses import dataclass

from fmn.core.owners import is_team, team_of
from fmn.core.signing import Unsubscribe, make_unsubscribe_token, unsubscribe_url
from fmn.notify.text import (
    METADATA_LIMIT,
    SUBJECT_LIMIT,
    line,
    line_html,
    mail_html,
    one_line,
    rule_label,
)
from fmn.senders import mime
from fmn.senders.digest import Digest
from fmn.senders.errors import PermanentError
from fmn.sendqueue.workitem import RuleRef, WorkItem

METADATA_PREFIX = "X-Fedora-Notify-"
# What one address may look like: a dot-atom local part (Unicode letters allowed) and a domain.
_ADDRESS = re.compile(r"^[\w.!#$%&'*+/=?^`{|}~-]{1,64}@[\w-]+(\.[\w-]+)+$")
_HEADER_NAME = re.compile(r"[^A-Za-z0-9-]")


def check_address(address: str) -> None:
    # The pattern admits only atoms: no quotes, spaces, brackets or line breaks.
    if len(address) > 254 or not _ADDRESS.fullmatch(address) or ".." in address:
        raise PermanentError(f"not a valid email address: {address[:100]!r}")


@dataclass
class MailSettings:
    from_address: str
    list_id: str
    public_url: str
    # Unsubscribe links' signing keys (the first signs).
    secret_keys: list[str]

    @functools.cached_property
    def envelope_from(self) -> str:
        return email.utils.parseaddr(self.from_address)[1]

    @functools.cached_property
    def domain(self) -> str:
        return self.envelope_from.rpartition("@")[2] or "localhost"


def rule_url(public_url: str, rule: RuleRef) -> str:
    return f"{public_url.rstrip('/')}/rules/{rule.id}"


def _whose(user: str) -> str:
    group = team_of(user)
    return f"the rule(s) of the group {group}" if group else "your rule(s)"


def _footer_text(cfg: MailSettings, user: str, rules: list[RuleRef]) -> str:
    if not rules:
        return "Sent by Fedora Notifications."
    lines = [f"Sent by Fedora Notifications because of {_whose(user)}:"]
    lines += [f"  {rule_label(r)}: {rule_url(cfg.public_url, r)}" for r in rules]
    return "\n".join(lines)


def _footer_html(cfg: MailSettings, user: str, rules: list[RuleRef]) -> str:
    links = ", ".join(
        f'<a href="{html.escape(rule_url(cfg.public_url, r))}">{html.escape(rule_label(r))}</a>'
        for r in rules
    )
    return (
        '<hr><p style="font-size:small;color:#666">'
        f"Sent by Fedora Notifications because of {html.escape(_whose(user))}: {links}</p>"
    )


Headers = list[tuple[str, str]]


def _common_headers(cfg: MailSettings, to: str, subject: str, date: dt.datetime) -> Headers:
    return [
        ("From", cfg.from_address),
        ("To", to),
        ("Subject", one_line(subject, SUBJECT_LIMIT)),
        ("Date", email.utils.format_datetime(date)),
        ("Auto-Submitted", "auto-generated"),
        ("Precedence", "bulk"),
        ("List-Id", f"Fedora Notifications <{cfg.list_id}>"),
    ]


def _unsubscribe_headers(cfg: MailSettings, user: str, rules: list[int], address: str) -> Headers:
    """One-click unsubscribe from this address of this rule; none when the mail is about
    several rules, since stopping one of them would not stop such a mail (the footer links
    to each rule instead), and none for a team's list address: a team rule is its sponsors' to
    stop, not any reader's of the list."""
    if len(rules) != 1 or is_team(user):
        return []
    token = make_unsubscribe_token(cfg.secret_keys, Unsubscribe(user, rules[0], "email", address))
    return [
        ("List-Unsubscribe", f"<{unsubscribe_url(cfg.public_url, token)}>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    ]


def _message_id(cfg: MailSettings, seed: str) -> str:
    # Derived from the idempotency key, so a resend carries the same Message-ID.
    return f"<{hashlib.sha256(seed.encode()).hexdigest()[:40]}@{cfg.domain}>"


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def build_notification(item: WorkItem, cfg: MailSettings) -> bytes:
    if item.email is None:
        raise PermanentError("email work item without email content")
    content = item.email
    # The bus message's time, not the send time: a late mail must not look new (FMN 3 #1145).
    headers = _common_headers(cfg, item.address, content.subject, _aware(item.message.sent_at))
    headers.append(("Message-ID", _message_id(cfg, item.key)))
    for name, value in content.metadata.items():
        clean_name = _HEADER_NAME.sub("", name)[:60]
        if clean_name:
            headers.append((METADATA_PREFIX + clean_name, one_line(value, METADATA_LIMIT)))
    headers += _unsubscribe_headers(cfg, item.user, [r.id for r in item.rules], item.address)
    text = f"{content.text.rstrip()}\n\n-- \n{_footer_text(cfg, item.user, item.rules)}\n"
    html_body = f"{mail_html(content.html)}\n{_footer_html(cfg, item.user, item.rules)}"
    return mime.alternative(headers, text, html_body)


def build_digest(digest: Digest, cfg: MailSettings, now: dt.datetime) -> bytes:
    headers = _common_headers(cfg, digest.address, f"[Fedora Notifications] {digest.title}", now)
    headers.append(
        ("Message-ID", _message_id(cfg, "digest\n" + "\n".join(i.key for i in digest.items)))
    )
    headers.append((METADATA_PREFIX + "Digest", str(len(digest.items))))
    rules = digest.rules
    headers += _unsubscribe_headers(cfg, digest.user, [r.id for r in rules], digest.address)
    lines = [f"{digest.title} ({digest.why}):", ""]
    items_html = []
    for item in digest.items:
        sent = _aware(item.message.sent_at).strftime("%Y-%m-%d %H:%M UTC")
        lines.append(f"- {one_line(line(item.message))}  ({sent})")
        items_html.append(f"<li>{line_html(item.message)} <small>({sent})</small></li>")
    text = "\n".join(lines) + f"\n\n-- \n{_footer_text(cfg, digest.user, rules)}\n"
    html_body = (
        f"<p>{html.escape(digest.title)} ({html.escape(digest.why)}):</p>"
        f"<ul>{''.join(items_html)}</ul>{_footer_html(cfg, digest.user, rules)}"
    )
    return mime.alternative(headers, text, mail_html(html_body))

"""Building notification mails. Every value from a bus message goes through text.one_line
before it becomes a header, and EmailMessage's strict policy refuses any header value that still
carries a line break, so a message cannot add headers of its own."""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
import hashlib
import html
import re
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage

import nh3

from fmn.core.signing import make_unsubscribe_token, unsubscribe_url
from fmn.senders.digest import Digest, item_line
from fmn.senders.errors import PermanentError
from fmn.senders.text import one_line, strip_controls
from fmn.workitem import RuleRef, WorkItem

POLICY = email.policy.SMTP.clone(raise_on_defect=True)
METADATA_PREFIX = "X-Fedora-Notify-"
SUBJECT_LIMIT = 250
# What one address may look like: a dot-atom local part (Unicode letters allowed) and a domain.
_ADDRESS = re.compile(r"^[\w.!#$%&'*+/=?^`{|}~-]{1,64}@[\w-]+(\.[\w-]+)+$")
_HEADER_NAME = re.compile(r"[^A-Za-z0-9-]")


def check_address(address: str) -> None:
    if len(address) > 254 or not _ADDRESS.match(address):
        raise PermanentError(f"not a valid email address: {address[:100]!r}")
    try:
        Address(addr_spec=address)
    except (ValueError, IndexError) as exc:
        raise PermanentError(f"not a valid email address: {address[:100]!r}") from exc


@dataclass(frozen=True)
class MailSettings:
    from_address: str
    list_id: str
    public_url: str
    secret_key: str

    @property
    def domain(self) -> str:
        return email.utils.parseaddr(self.from_address)[1].rpartition("@")[2] or "localhost"

    @property
    def envelope_from(self) -> str:
        return email.utils.parseaddr(self.from_address)[1]


def rule_url(public_url: str, rule: RuleRef) -> str:
    return f"{public_url.rstrip('/')}/rules/{rule.id}"


def _rule_label(rule: RuleRef) -> str:
    return f'"{one_line(rule.name, 100)}"' if rule.name else f"#{rule.id}"


def _footer_text(cfg: MailSettings, rules: list[RuleRef]) -> str:
    lines = ["Sent by Fedora Notifications because of your rule(s):"]
    lines += [f"  {_rule_label(r)}: {rule_url(cfg.public_url, r)}" for r in rules]
    return "\n".join(lines)


def _footer_html(cfg: MailSettings, rules: list[RuleRef]) -> str:
    links = ", ".join(
        f'<a href="{html.escape(rule_url(cfg.public_url, r))}">{html.escape(_rule_label(r))}</a>'
        for r in rules
    )
    return (
        '<hr><p style="font-size:small;color:#666">'
        f"Sent by Fedora Notifications because of your rule(s): {links}</p>"
    )


def _common_headers(msg: EmailMessage, cfg: MailSettings, to: str, subject: str) -> None:
    msg["From"] = cfg.from_address
    msg["To"] = to
    msg["Subject"] = one_line(subject, SUBJECT_LIMIT)
    msg["Auto-Submitted"] = "auto-generated"
    msg["Precedence"] = "bulk"
    msg["List-Id"] = f"Fedora Notifications <{cfg.list_id}>"


def _unsubscribe_headers(msg: EmailMessage, cfg: MailSettings, user: str, rules: list[int]) -> None:
    token = make_unsubscribe_token(cfg.secret_key, user, rules)
    msg["List-Unsubscribe"] = f"<{unsubscribe_url(cfg.public_url, token)}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"


def _message_id(cfg: MailSettings, seed: str) -> str:
    # Derived from the idempotency key, so a resend carries the same Message-ID.
    return f"<{hashlib.sha256(seed.encode()).hexdigest()[:40]}@{cfg.domain}>"


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _set_body(msg: EmailMessage, text: str, html_body: str) -> None:
    msg.set_content(text, cte="quoted-printable")
    msg.add_alternative(html_body, subtype="html", cte="quoted-printable")


def build_notification(item: WorkItem, cfg: MailSettings) -> EmailMessage:
    if item.email is None:
        raise PermanentError("email work item without email content")
    content = item.email
    msg = EmailMessage(policy=POLICY)
    _common_headers(msg, cfg, item.address, content.subject)
    # The bus message's time, not the send time: a late mail must not look new (FMN 3 #1145).
    msg["Date"] = email.utils.format_datetime(_aware(item.message.sent_at))
    msg["Message-ID"] = _message_id(cfg, item.key)
    for name, value in content.metadata.items():
        clean_name = _HEADER_NAME.sub("", name)[:60]
        if clean_name:
            msg[METADATA_PREFIX + clean_name] = one_line(value, 900)
    rule_ids = [r.id for r in item.rules]
    if rule_ids:
        _unsubscribe_headers(msg, cfg, item.user, rule_ids)
    text = f"{strip_controls(content.text).rstrip()}\n\n-- \n{_footer_text(cfg, item.rules)}\n"
    html_body = f"{nh3.clean(content.html)}\n{_footer_html(cfg, item.rules)}"
    _set_body(msg, text, html_body)
    return msg


def build_digest(digest: Digest, cfg: MailSettings, now: dt.datetime) -> EmailMessage:
    msg = EmailMessage(policy=POLICY)
    _common_headers(msg, cfg, digest.address, f"[Fedora Notifications] {digest.title}")
    msg["Date"] = email.utils.format_datetime(now)
    msg["Message-ID"] = _message_id(cfg, "digest\n" + "\n".join(i.key for i in digest.items))
    msg[METADATA_PREFIX + "Digest"] = str(len(digest.items))
    rules = digest.rules
    # One-click unsubscribe disables rules; only offer it when the digest is about one rule.
    if len(rules) == 1:
        _unsubscribe_headers(msg, cfg, digest.user, [rules[0].id])
    lines = [f"{digest.title} ({one_line(digest.why)}):", ""]
    items_html = []
    for item in digest.items:
        sent = _aware(item.message.sent_at).strftime("%Y-%m-%d %H:%M UTC")
        lines.append(f"- {one_line(item_line(item))}  ({sent})")
        label = html.escape(one_line(item.message.summary))
        app = html.escape(one_line(item.message.app_name or ""))
        url = item.message.url
        summary = f'<a href="{html.escape(url)}">{label}</a>' if url else label
        items_html.append(f"<li>[{app}] {summary} <small>({sent})</small></li>")
    text = "\n".join(lines) + f"\n\n-- \n{_footer_text(cfg, rules)}\n"
    html_body = (
        f"<p>{html.escape(digest.title)} ({html.escape(digest.why)}):</p>"
        f"<ul>{''.join(items_html)}</ul>{_footer_html(cfg, rules)}"
    )
    _set_body(msg, text, nh3.clean(html_body))
    return msg

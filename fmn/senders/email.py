"""The email sender: a notification's written text (fmn.notify) framed as a mail, and sent over
SMTP through aiosmtplib, over a pool of kept-open connections (plain, STARTTLS or TLS, with
optional login).

Framing: headers and a multipart/alternative body, with the sender's footer (links to the rules
and to unsubscribe). Every header value passes notify.one_line at the frame's edge (a no-op on
written text, a guard against any other) and the MIME writer refuses one that still carries a
line break, so nothing in a work item can add a header; HTML passes notify.mail_html.

The MIME writer is small and strict (headers + text/plain and text/html). Why not
email.message.EmailMessage: with its strict policy it costs 2-7 ms per mail on the development
machines (header parsing and refolding in pure Python), which alone caps one sender near
150-400 mails/s; this writer takes about 20 µs. It keeps the policy's guarantees that matter
here: a header name must be a token, a header value containing CR, LF or NUL is refused
(ValueError, as EmailPolicy does), non-ASCII values are RFC 2047 encoded, and bodies are
quoted-printable, which can never contain the "=_" that starts our boundary. The tests parse
every mail back with the standard library's parser and check it has no defects.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import datetime as dt
import email.utils
import functools
import hashlib
import html
import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from email.header import Header

import aiosmtplib

from fmn.core.settings import EmailSenderSettings
from fmn.core.signing import Unsubscribe, unsubscribe_url
from fmn.notify import (
    METADATA_LIMIT,
    SUBJECT_LIMIT,
    line,
    line_html,
    mail_html,
    one_line,
    rule_label,
)
from fmn.senders.digest import Digest
from fmn.senders.errors import PermanentError, TransientError
from fmn.senders.handler import Handler
from fmn.sendqueue.workitem import RuleRef, WorkItem

log = logging.getLogger(__name__)


# ---- the MIME writer ----------------------------------------------------------------------

CRLF = "\r\n"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_FORBIDDEN = re.compile(r"[\r\n\x00]")
LINE = 78  # a header line's length before it is folded


class HeaderError(ValueError):
    """A header that would break the message's structure."""


def header(name: str, value: str) -> str:
    """One header field, folded, ready to join with CRLF."""
    if not _NAME.fullmatch(name):
        raise HeaderError(f"invalid header name {name!r}")
    if _FORBIDDEN.search(value):
        raise HeaderError(f"header {name} may not contain CR, LF or NUL")
    if not value.isascii():
        return f"{name}: " + Header(value, "utf-8", header_name=name).encode(linesep=CRLF)
    return _fold(name, value)


def _fold(name: str, value: str) -> str:
    """Break long lines at spaces (RFC 5322 §2.2.3); a word longer than a line stays whole,
    and the first word stays beside the name."""
    whole = f"{name}: {value}"
    if len(whole) <= LINE:
        return whole
    first, *rest = value.split(" ")
    out: list[str] = []
    current = f"{name}: {first}"
    for word in rest:
        if len(current) + 1 + len(word) > LINE:
            out.append(current)
            current = " " + word
        else:
            current = f"{current} {word}"
    out.append(current)
    return CRLF.join(out)


def _qp(text: str) -> str:
    body = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    return binascii.b2a_qp(body, istext=True).decode("ascii").replace("\n", CRLF)


def _text_part(subtype: str, text: str) -> str:
    return (
        f"Content-Type: text/{subtype}; charset=utf-8{CRLF}"
        f"Content-Transfer-Encoding: quoted-printable{CRLF}{CRLF}{_qp(text)}"
    )


def alternative(headers: Sequence[tuple[str, str]], text: str, html: str) -> bytes:
    """A multipart/alternative mail with a plain-text and an HTML part."""
    boundary = f"=_fmn_{secrets.token_hex(12)}"
    lines = [header(name, value) for name, value in headers]
    lines += [
        "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
        "",
        f"--{boundary}",
        _text_part("plain", text),
        f"--{boundary}",
        _text_part("html", html),
        f"--{boundary}--",
        "",
    ]
    return CRLF.join(lines).encode("ascii")


# ---- framing a notification or a digest ----------------------------------------------------

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


def _whose(team: str | None) -> str:
    return f"the rule(s) of the group {team}" if team else "your rule(s)"


def _footer_text(cfg: MailSettings, team: str | None, rules: list[RuleRef]) -> str:
    if not rules:
        return "Sent by Fedora Notifications."
    lines = [f"Sent by Fedora Notifications because of {_whose(team)}:"]
    lines += [f"  {rule_label(r)}: {rule_url(cfg.public_url, r)}" for r in rules]
    return "\n".join(lines)


def _footer_html(cfg: MailSettings, team: str | None, rules: list[RuleRef]) -> str:
    if not rules:
        return '<hr><p style="font-size:small;color:#666">Sent by Fedora Notifications.</p>'
    links = ", ".join(
        f'<a href="{html.escape(rule_url(cfg.public_url, r))}">{html.escape(rule_label(r))}</a>'
        for r in rules
    )
    return (
        '<hr><p style="font-size:small;color:#666">'
        f"Sent by Fedora Notifications because of {html.escape(_whose(team))}: {links}</p>"
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


def _unsubscribe_headers(
    cfg: MailSettings, user: str, team: str | None, rules: list[int], address: str
) -> Headers:
    """One-click unsubscribe from this address of this rule; none when the mail is about
    several rules, since stopping one of them would not stop such a mail (the footer links
    to each rule instead), and none for a team's list address: a team rule is its sponsors' to
    stop, not any reader's of the list."""
    if len(rules) != 1 or team is not None:
        return []
    wanted = Unsubscribe(user, rules[0], "email", address)
    return [
        ("List-Unsubscribe", f"<{unsubscribe_url(cfg.public_url, cfg.secret_keys, wanted)}>"),
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
    rule_ids = [r.id for r in item.rules]
    headers += _unsubscribe_headers(cfg, item.user, item.team, rule_ids, item.address)
    text = f"{content.text.rstrip()}\n\n-- \n{_footer_text(cfg, item.team, item.rules)}\n"
    html_body = f"{mail_html(content.html)}\n{_footer_html(cfg, item.team, item.rules)}"
    return alternative(headers, text, html_body)


def build_digest(digest: Digest, cfg: MailSettings, now: dt.datetime) -> bytes:
    headers = _common_headers(cfg, digest.address, f"[Fedora Notifications] {digest.title}", now)
    headers.append(
        ("Message-ID", _message_id(cfg, "digest\n" + "\n".join(i.key for i in digest.items)))
    )
    headers.append((METADATA_PREFIX + "Digest", str(len(digest.items))))
    rules = digest.rules
    rule_ids = [r.id for r in rules]
    headers += _unsubscribe_headers(cfg, digest.user, digest.team, rule_ids, digest.address)
    lines = [f"{digest.title} ({digest.why}):", ""]
    items_html = []
    for item in digest.items:
        sent = _aware(item.message.sent_at).strftime("%Y-%m-%d %H:%M UTC")
        lines.append(f"- {one_line(line(item.message))}  ({sent})")
        items_html.append(f"<li>{line_html(item.message)} <small>({sent})</small></li>")
    text = "\n".join(lines) + f"\n\n-- \n{_footer_text(cfg, digest.team, rules)}\n"
    html_body = (
        f"<p>{html.escape(digest.title)} ({html.escape(digest.why)}):</p>"
        f"<ul>{''.join(items_html)}</ul>{_footer_html(cfg, digest.team, rules)}"
    )
    return alternative(headers, text, mail_html(html_body))


# ---- sending over SMTP ----------------------------------------------------------------------


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
        check_address(address)

    async def send(self, item: WorkItem) -> None:
        await self._deliver(build_notification(item, self.mail), item.address)

    async def send_digest(self, digest: Digest) -> None:
        now = dt.datetime.now(dt.UTC)
        await self._deliver(build_digest(digest, self.mail, now), digest.address)

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

"""A small, strict MIME writer for notification mails (headers + text/plain and text/html).

Why not email.message.EmailMessage: with its strict policy it costs 2-7 ms per mail on the
development machines (header parsing and refolding in pure Python), which alone caps one sender
near 150-400 mails/s; this writer takes about 20 µs. It keeps the policy's guarantees that
matter here: a header name must be a token, a header value containing CR, LF or NUL is refused
(ValueError, as EmailPolicy does), non-ASCII values are RFC 2047 encoded, and bodies are
quoted-printable, which can never contain the "=_" that starts our boundary. The tests parse
every mail back with the standard library's parser and check it has no defects.
"""

from __future__ import annotations

import binascii
import re
import secrets
from collections.abc import Sequence
from email.header import Header

CRLF = "\r\n"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_FORBIDDEN = re.compile(r"[\r\n\x00]")
LINE = 78


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
    line = f"{name}: {value}"
    if len(line) <= LINE:
        return line
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

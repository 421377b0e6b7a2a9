"""The MIME writer's mails read back with the standard library's strict parser, unchanged."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

import pytest

from fmn.senders.email import HeaderError, alternative, header

STRICT = email.policy.default.clone(raise_on_defect=True)


def parse(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=STRICT)
    assert isinstance(msg, EmailMessage)
    return msg


def test_round_trip_with_non_ascii_and_long_values() -> None:
    subject = "Überprüfung: " + "ein sehr langer Betreff " * 8
    long_ascii = "word " * 40
    data = alternative(
        [("Subject", subject), ("X-Long", long_ascii.strip()), ("To", "a@example.org")],
        "Grüße\nline two with = sign and a very long line " + "x" * 200 + "\n.\nend",
        "<p>Grüße</p>",
    )
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    msg = parse(data)
    assert msg["Subject"] == subject
    assert msg["X-Long"] == long_ascii.strip()
    assert not msg.defects
    # The wire format's CRLF line ends come back as they were sent.
    text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    assert text == "Grüße\nline two with = sign and a very long line " + "x" * 200 + "\n.\nend"
    assert msg.get_body(("html",)).get_content() == "<p>Grüße</p>"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Subject", "a\r\nBcc: x@example.org"),
        ("Subject", "a\nb"),
        ("Subject", "a\x00b"),
        ("Bcc: x@example.org\r\nX", "v"),
        ("", "v"),
    ],
)
def test_header_breaking_input_is_refused(name: str, value: str) -> None:
    with pytest.raises(HeaderError):
        header(name, value)


def test_a_body_cannot_end_the_part() -> None:
    """QP encodes "=", so no body can contain the boundary, which starts with "=_"."""
    data = alternative([("To", "a@example.org")], "--=_fmn_x--\n", "=_fmn_")
    msg = parse(data)
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert text.replace("\r\n", "\n") == "--=_fmn_x--\n"

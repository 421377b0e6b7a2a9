"""Addresses each protocol accepts; anything else is dead-lettered before a send is tried."""

from __future__ import annotations

import pytest

from fmn.senders.email import check_address
from fmn.senders.errors import PermanentError
from fmn.senders.irc import IRCHandler, split_utf8
from fmn.senders.matrix import MatrixHandler

GOOD_EMAIL = ["alice@example.org", "a.b+tag@mail.example.co.uk", "x_y-z@sub-domain.example"]
BAD_EMAIL = [
    "alice",
    "alice@localhost",
    "alice@example.org\r\nBcc: x@example.org",
    "<alice@example.org>",
    "Alice <alice@example.org>",
    "a b@example.org",
    "a..b@example.org",
    "alice@example.org,bob@example.org",
    "a" * 65 + "@example.org",
]


@pytest.mark.parametrize("address", GOOD_EMAIL)
def test_good_email_addresses(address: str) -> None:
    check_address(address)


@pytest.mark.parametrize("address", BAD_EMAIL)
def test_bad_email_addresses(address: str) -> None:
    with pytest.raises(PermanentError):
        check_address(address)


@pytest.mark.parametrize("nick", ["alice", "Bob_", "[x]", "a-1", "nick^"])
def test_good_irc_nicks(nick: str) -> None:
    IRCHandler.check_address(None, nick)  # type: ignore[arg-type]


@pytest.mark.parametrize("nick", ["#chan", "1abc", "a b", "a,b", "a\r\nQUIT", "", "x" * 31])
def test_bad_irc_nicks(nick: str) -> None:
    with pytest.raises(PermanentError):
        IRCHandler.check_address(None, nick)  # type: ignore[arg-type]


@pytest.mark.parametrize("user_id", ["@alice:fedora.im", "@a.b_c=d/e+f:example.org:8448"])
def test_good_matrix_ids(user_id: str) -> None:
    MatrixHandler.check_address(None, user_id)  # type: ignore[arg-type]


@pytest.mark.parametrize("user_id", ["alice", "@alice", "@al ice:x.org", "@a:x.org\n", "#r:x"])
def test_bad_matrix_ids(user_id: str) -> None:
    with pytest.raises(PermanentError):
        MatrixHandler.check_address(None, user_id)  # type: ignore[arg-type]


def test_split_never_cuts_a_character() -> None:
    text = "€" * 100  # three bytes each
    pieces = split_utf8(text, 10)
    assert all(len(p.encode()) <= 10 for p in pieces)
    assert "".join(pieces) == text

"""Signed one-click unsubscribe tokens (RFC 8058), made by the email sender and checked by the
API's unsubscribe endpoint. One module for both sides so the format cannot drift apart.

A token names one user, one of their rules and one destination of it (protocol and address),
and expires: it stops that destination of that rule, nothing else, for as long as an old mail
is likely to be acted on (`api.unsubscribe_link_days`). It is signed with the first of
`api.secret_keys` and checked against all of them, so keys can be rotated.
"""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

# A new salt per format: tokens of another format (the first, rule-wide and never expiring)
# fail the signature check instead of being read as this one.
_SALT = "fmn-unsubscribe-v2"


class InvalidToken(Exception):
    """The token was not made with our keys, was altered, or is of an older format."""


class ExpiredToken(InvalidToken):
    """The token was ours but is older than the links' lifetime."""


@dataclass(frozen=True)
class Unsubscribe:
    user: str
    rule_id: int
    protocol: str
    address: str


def _serializer(keys: list[str]) -> URLSafeTimedSerializer:
    if not keys:
        raise ValueError("no signing key")
    # itsdangerous signs with the last key of the list and verifies with all of them.
    return URLSafeTimedSerializer(list(reversed(keys)), salt=_SALT)


def make_unsubscribe_token(keys: list[str], wanted: Unsubscribe) -> str:
    data = {"u": wanted.user, "r": wanted.rule_id, "p": wanted.protocol, "a": wanted.address}
    return str(_serializer(keys).dumps(data))


def read_unsubscribe_token(keys: list[str], token: str, max_age_days: int) -> Unsubscribe:
    """What a token asks to stop; raises ExpiredToken or InvalidToken."""
    try:
        data = _serializer(keys).loads(token, max_age=max_age_days * 86400)
    except SignatureExpired:
        raise ExpiredToken("this unsubscribe link has expired") from None
    except BadSignature:
        raise InvalidToken("invalid unsubscribe token") from None
    try:
        return Unsubscribe(
            user=str(data["u"]),
            rule_id=int(data["r"]),
            protocol=str(data["p"]),
            address=str(data["a"]),
        )
    except (KeyError, TypeError, ValueError):
        raise InvalidToken("invalid unsubscribe token") from None


def unsubscribe_url(public_url: str, keys: list[str], wanted: Unsubscribe) -> str:
    """The one-click link that stops what `wanted` names, with its token signed."""
    return f"{public_url.rstrip('/')}/api/v1/unsubscribe/{make_unsubscribe_token(keys, wanted)}"

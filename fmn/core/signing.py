"""Signed one-click unsubscribe tokens (RFC 8058), made by the email sender and checked by the
API's unsubscribe endpoint. One module for both sides so the format cannot drift apart.

A token names the rules to disable and their owner; it is signed with ``api.secret_key`` and
does not expire, because an unsubscribe link in an old mail must keep working.
"""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer

_SALT = "fmn-unsubscribe-v1"


class InvalidToken(Exception):
    """The token was not made with our secret, or was altered."""


@dataclass(frozen=True)
class Unsubscribe:
    user: str
    rule_ids: tuple[int, ...]


def _serializer(secret_key: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret_key, salt=_SALT)


def make_unsubscribe_token(secret_key: str, user: str, rule_ids: list[int]) -> str:
    return str(_serializer(secret_key).dumps({"u": user, "r": sorted(set(rule_ids))}))


def read_unsubscribe_token(secret_key: str, token: str) -> Unsubscribe:
    """What a token asks to unsubscribe from; raises InvalidToken."""
    try:
        data = _serializer(secret_key).loads(token)
        return Unsubscribe(user=str(data["u"]), rule_ids=tuple(int(r) for r in data["r"]))
    except (BadSignature, KeyError, TypeError, ValueError):
        raise InvalidToken("invalid unsubscribe token") from None


def unsubscribe_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/api/v1/unsubscribe/{token}"

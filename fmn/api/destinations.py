"""A user's own addresses, read from their directory entry (reference §2.3): every email, and
every `ircnicks` entry read as a URL — no scheme or irc:// is an IRC nick, matrix://server/nick
and matrix:///nick are the Matrix id @nick:server (default server from the settings); last, the
web inbox, named by the username."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from pydantic import ValidationError

from fmn.rules import schema


def _irc_or_matrix(entry: str, default_matrix_server: str) -> tuple[str, str] | None:
    try:
        url = urlparse(entry.strip())
        host = url.hostname
    except ValueError:
        return None
    nick = url.path.lstrip("/")
    if url.scheme in ("", "irc", "ircs"):
        return ("irc", nick)
    if url.scheme == "matrix":
        return ("matrix", f"@{nick.lstrip('@')}:{host or default_matrix_server}")
    return None


def user_destinations(
    username: str, user: dict[str, Any] | None, default_matrix_server: str
) -> list[schema.Destination]:
    """The addresses a user may send notifications to; malformed entries are left out. The web
    inbox is every known user's own, named by their username."""
    if not user:
        return []
    candidates: list[tuple[str, str]] = []
    for email in user.get("emails") or ():
        if isinstance(email, str):
            candidates.append(("email", email.strip()))
    for entry in user.get("ircnicks") or ():
        if isinstance(entry, str):
            found = _irc_or_matrix(entry, default_matrix_server)
            if found is not None:
                candidates.append(found)
    candidates.append(("web", username))
    result: list[schema.Destination] = []
    for protocol, address in dict.fromkeys(candidates):
        try:
            result.append(schema.Destination(protocol=protocol, address=address))  # type: ignore[arg-type]
        except ValidationError:
            continue
    return result

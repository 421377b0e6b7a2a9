"""Cleaning text from bus messages before it reaches a protocol, so that nothing in a message
can start a new header, a new IRC command or a new line."""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_BODY_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_SPACES = re.compile(r"[ \t]*[\r\n\t\u2028\u2029]+[ \t]*")


def one_line(text: str, limit: int | None = None) -> str:
    """Line breaks become spaces, every other control character is dropped."""
    text = _CONTROLS.sub("", _SPACES.sub(" ", text)).strip()
    if limit is not None and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def strip_controls(text: str) -> str:
    """Keep line breaks (for bodies), drop every other control character."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _BODY_CONTROLS.sub("", text)

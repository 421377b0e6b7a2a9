"""How a send failed decides what happens to the notification."""

from __future__ import annotations


class SendError(Exception):
    """A send failed."""


class PermanentError(SendError):
    """Trying again cannot help (bad address, recipient refused): dead-letter it now."""


class TransientError(SendError):
    """The server or the network failed: try again later, with growing delays."""

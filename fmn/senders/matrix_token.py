"""What the Matrix sender does while the homeserver refuses its access token (revoked, or
expired): every notification is dead-lettered at once with that reason, a gauge says so for the
alert, one log line says it when it starts and one when it ends, and the homeserver is asked
again only once per `recheck` seconds, not once per notification. A new token needs a restart
with new settings; the dead letters are then replayed (`fmn deadletter replay`)."""

from __future__ import annotations

import logging
import time
from typing import Any

from prometheus_client import Gauge

from fmn.senders.errors import PermanentError

log = logging.getLogger(__name__)

TOKEN_REFUSED = Gauge(
    "fmn_sender_matrix_token_refused",
    "1 while the homeserver refuses the Matrix sender's access token (every Matrix notification "
    "is dead-lettered until senders.matrix.access_token is replaced)",
)
TOKEN_ERRORS = ("M_UNKNOWN_TOKEN", "M_MISSING_TOKEN")


class TokenRefused(PermanentError):
    """The homeserver refused the access token."""


def is_token_refusal(response: Any) -> bool:
    return getattr(response, "status_code", None) in TOKEN_ERRORS


class TokenGuard:
    def __init__(self, recheck: float) -> None:
        self.recheck = recheck
        self._refusal: str | None = None
        self._asked_at = float("-inf")

    def check(self) -> None:
        """Raise TokenRefused without asking the homeserver while a refusal is fresh."""
        if self._refusal is not None and time.monotonic() - self._asked_at < self.recheck:
            raise TokenRefused(self._refusal)

    def refused(self, response: Any) -> TokenRefused:
        code = getattr(response, "status_code", None)
        said = getattr(response, "message", "") or ""
        reason = (
            f"Matrix access token refused by the homeserver ({code}: {said}); "
            "replace senders.matrix.access_token, restart the sender, then replay these "
            "dead letters"
        )
        if self._refusal is None:
            log.error("%s", reason)
        self._refusal = reason
        self._asked_at = time.monotonic()
        TOKEN_REFUSED.set(1)
        return TokenRefused(reason)

    def accepted(self) -> None:
        if self._refusal is not None:
            log.info("the homeserver accepts the Matrix access token again")
            self._refusal = None
        TOKEN_REFUSED.set(0)

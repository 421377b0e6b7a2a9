"""A shortcut for the busiest request, `GET /api/v1/users/{username}/rules`, in front of
FastAPI and its middlewares: once the page comes from fmn.api.rule_cache, routing, dependency
resolution and the middleware layers cost more CPU than the answer itself.

It answers only the plain case: a token this process verified moments ago (the identity memo)
naming the user in the path, no Origin header, no request body, page parameters in their
plain form. Anything else — no or unknown token, someone else's rules, an admin, a CORS
request, an odd query string — goes on to the app, which answers (or refuses) it the ordinary
way; the shortcut never refuses anything itself. Its answer is the one the route and the
middlewares would give, headers included (CORS's `Vary: Origin`), and it counts in the
request metrics as the route's; if it fails before answering (the database), the app handles
the request instead, so errors are the app's.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI
from starlette.types import Scope, Send

from fmn.api.metrics import LATENCY, REQUESTS
from fmn.api.pagination import MAX_PAGE
from fmn.api.services import Services
from fmn.rules.schema import MAX_NAME_LENGTH

log = logging.getLogger(__name__)

_NUMBER = re.compile(r"[1-9][0-9]{0,6}")


class RulesListShortcut:
    def __init__(
        self, fastapi: FastAPI, prefix: str, extra_headers: Sequence[tuple[bytes, bytes]] = ()
    ) -> None:
        self.fastapi = fastapi
        # The security headers (fmn.api.security_headers), which the middlewares would add.
        self.extra_headers = list(extra_headers)
        self.path = re.compile(re.escape(prefix) + r"/users/([^/]+)/rules")
        route = prefix + "/users/{username}/rules"
        self.latency = LATENCY.labels("GET", route)
        self.answered = REQUESTS.labels("GET", route, "200")

    async def answer(self, scope: Scope, send: Send) -> bool:
        """Answer the request if it is a plain one; False: the app is to handle it."""
        start = time.perf_counter()
        request = self._plain_request(scope)
        if request is None:
            return False
        username, token, query = request
        services: Services = self.fastapi.state.services
        identity = services.verifier.remembered(token)
        page = _page(query, services)
        if identity is None or identity.name != username or page is None:
            return False
        number, size = page
        try:
            found = await services.rule_pages.get(username, (number - 1) * size, size)
        except Exception as exc:  # the app answers, the ordinary way
            log.debug("rules list shortcut: %r", exc)
            return False
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", str(len(found.body)).encode()),
                    (b"content-type", b"application/json"),
                    (b"x-total-count", str(found.total).encode()),
                    (b"x-page", str(number).encode()),
                    (b"x-page-size", str(size).encode()),
                    (b"vary", b"Origin"),  # what the CORS middleware adds
                    *self.extra_headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": found.body})
        self.latency.observe(time.perf_counter() - start)
        self.answered.inc()
        return True

    def _plain_request(self, scope: Scope) -> tuple[str, str, bytes] | None:
        """(username, token, query string) of a plain rules-list request, else None."""
        if scope["type"] != "http" or scope["method"] != "GET" or scope.get("root_path"):
            return None
        match = self.path.fullmatch(scope["path"])
        if match is None or len(match[1]) > MAX_NAME_LENGTH:
            return None
        token = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                if token is not None:
                    return None
                scheme, _, credentials = value.decode("latin-1").partition(" ")
                if scheme.lower() != "bearer":
                    return None
                token = credentials.strip()
            elif name in _NOT_PLAIN and (name != b"content-length" or value != b"0"):
                return None
        if not token:
            return None
        return match[1], token, scope["query_string"]


# Request headers that send a request to the app: CORS, a body.
_NOT_PLAIN = frozenset((b"origin", b"content-length", b"transfer-encoding"))


def _page(query: bytes, services: Services) -> tuple[int, int] | None:
    """(page, page size) from a query string with nothing but plain values of both (any
    other query goes to the route, which also explains what is wrong with it)."""
    api = services.settings.api
    number, size = 1, api.page_size
    if not query:
        return number, size
    seen: dict[str, Any] = {}
    for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if key in seen or key not in ("page", "page_size") or not _NUMBER.fullmatch(value):
            return None
        seen[key] = int(value)
    number = seen.get("page", number)
    size = seen.get("page_size", size)
    if number > MAX_PAGE or size > api.max_page_size:
        return None
    return number, size

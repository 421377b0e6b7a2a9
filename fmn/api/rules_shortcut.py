"""A shortcut for the busiest request, `GET /api/v1/users/{username}/rules`, around FastAPI's
routing and dependency resolution (which cost more CPU than the answer itself once the page
comes from fmn.api.rule_cache).

It answers only the plain case: a token this process verified moments ago (the identity memo)
naming the user in the path, no Origin header, page parameters in their plain form. Anything
else — no or unknown token, someone else's rules, an admin, a CORS request, an odd query
string — goes on to the route, which answers (or refuses) it the ordinary way; the shortcut
never refuses anything itself. It sits inside the other middlewares, so metrics, CORS, body
limits and the 500 handler see its answers as they see the route's.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from fmn.api.asgi import HTTPMiddleware
from fmn.api.pagination import MAX_PAGE
from fmn.api.routes.rules import list_rules
from fmn.api.services import Services
from fmn.rules.schema import MAX_NAME_LENGTH

_NUMBER = re.compile(r"[1-9][0-9]{0,6}")


class RulesListShortcut(HTTPMiddleware):
    def __init__(self, app: ASGIApp, fastapi: FastAPI, prefix: str) -> None:
        super().__init__(app)
        self.fastapi = fastapi
        self.path = re.compile(re.escape(prefix) + r"/users/([^/]+)/rules")
        self.route: APIRoute | None = None

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = self._plain_request(scope)
        if request is None:
            await self.app(scope, receive, send)
            return
        username, token, query = request
        services: Services = self.fastapi.state.services
        identity = services.verifier.remembered(token)
        page = _page(query, services)
        if identity is None or identity.name != username or page is None:
            await self.app(scope, receive, send)
            return
        number, size = page
        found = await services.rule_pages.get(username, (number - 1) * size, size)
        scope["route"] = self._route(scope)  # for the metrics' route label
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
                ],
            }
        )
        await send({"type": "http.response.body", "body": found.body})

    def _plain_request(self, scope: Scope) -> tuple[str, str, bytes] | None:
        """(username, token, query string) of a plain rules-list request, else None."""
        if scope["method"] != "GET" or scope.get("root_path"):
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
            elif name == b"origin":
                return None
        if not token:
            return None
        return match[1], token, scope["query_string"]

    def _route(self, scope: Scope) -> APIRoute | None:
        if self.route is None:
            for route in self.fastapi.router.routes:
                if isinstance(route, APIRoute) and route.endpoint is list_rules:
                    self.route = route
        return self.route


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

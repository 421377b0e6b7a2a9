"""The API's outermost middleware: request metrics, security headers and the request body
limit in one pure ASGI layer. Each layer costs every request a coroutine and a wrapped `send`;
these three sit next to each other outside CORS, so they share one (docs/performance.md, API)."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fmn.api.limits import BodyTooLarge, announced_too_large, body_limit_detail, refuse_body
from fmn.api.metrics import RequestMetrics
from fmn.api.middleware import WatchedSend
from fmn.api.security_headers import SecurityHeaders


class Edge:
    """Counts and times every HTTP request by route template (`RequestMetrics`), adds the
    security headers to every answer, and refuses request bodies larger than `max_body_size`
    bytes with 413, whether announced by Content-Length or streamed in chunks."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_size: int,
        security_headers: SecurityHeaders,
    ) -> None:
        self.app = app
        self.max_body_size = max_body_size
        self.security_headers = security_headers
        self.metrics = RequestMetrics()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        answer = WatchedSend(send, self.security_headers.for_path(scope["path"]))
        try:
            if announced_too_large(scope, self.max_body_size):
                await refuse_body(answer, self.max_body_size)
                return
            try:
                await self.app(scope, self._limited(receive), answer)
            except BodyTooLarge:
                if not answer.started:
                    await refuse_body(answer, self.max_body_size)
        finally:
            self.metrics.record(scope, answer.status, time.perf_counter() - start)

    def _limited(self, receive: Receive) -> Receive:
        max_size = self.max_body_size
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_size:
                    raise BodyTooLarge(413, body_limit_detail(max_size))
            return message

        return limited_receive

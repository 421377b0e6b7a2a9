"""Prometheus metrics: request counts and latencies per route template, plus a few gauges read
at scrape time. A pure ASGI middleware, so it adds microseconds, not a task per request."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from fmn.api.announce import Announcer
from fmn.api.middleware import HTTPMiddleware, WatchedSend

REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter(
    "fmn_api_requests",
    "HTTP requests answered",
    ["method", "route", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "fmn_api_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
ANNOUNCEMENTS_PENDING = Gauge(
    "fmn_api_announcements_pending",
    "Rule changes committed but not yet announced on the bus",
    registry=REGISTRY,
)
ANNOUNCEMENTS_FAILED = Gauge(
    "fmn_api_announcements_failed",
    "Rule-change announcements given up on since the process started",
    registry=REGISTRY,
)
PREVIEW_SCANNED = Counter(
    "fmn_api_preview_messages_scanned",
    "Archived messages read by rule previews",
    registry=REGISTRY,
)


class MetricsMiddleware(HTTPMiddleware):
    def __init__(self, app: ASGIApp, prefix: str = "") -> None:
        super().__init__(app)
        self.prefix = prefix
        # The labelled children, found once (labels() takes a lock and builds a key each time).
        self._latency: dict[tuple[str, str], Any] = {}
        self._requests: dict[tuple[str, str, int], Any] = {}

    def _route(self, scope: Scope) -> str:
        """The route's template: a bounded label, unlike the path."""
        path = getattr(scope.get("route"), "path", None)
        if not isinstance(path, str):
            return "unmatched"
        # FastAPI hands out the included router's own route, without the include prefix.
        if self.prefix and scope.get("path", "").startswith(self.prefix + "/"):
            if not path.startswith(self.prefix + "/"):
                path = self.prefix + path
        return path

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        watched = WatchedSend(send)
        try:
            await self.app(scope, receive, watched)
        finally:
            route = self._route(scope)
            method = scope.get("method", "")
            latency = self._latency.get((method, route))
            if latency is None:
                latency = self._latency[method, route] = LATENCY.labels(method, route)
            latency.observe(time.perf_counter() - start)
            key = (method, route, watched.status)
            counter = self._requests.get(key)
            if counter is None:
                counter = self._requests[key] = REQUESTS.labels(method, route, str(key[2]))
            counter.inc()


def watch_announcer(announcer: Announcer) -> None:
    """The announcement gauges read the running app's announcer at scrape time."""
    ANNOUNCEMENTS_PENDING.set_function(lambda: announcer.pending)
    ANNOUNCEMENTS_FAILED.set_function(lambda: announcer.failed)


async def metrics_endpoint(request: Request) -> Response:
    """/metrics on the API's own port: only with `api.metrics_public` (else `api.metrics_port`
    serves the same registry apart)."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

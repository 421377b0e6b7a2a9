"""Prometheus metrics: request counts and latencies per route template, plus a few gauges read
at scrape time. Requests are recorded by the pure ASGI `fmn.api.edge.Edge`: microseconds, not
a task per request."""

from __future__ import annotations

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
from starlette.types import Scope

from fmn.api.announce import Announcer

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


class RequestMetrics:
    """Records each answered request under its route template (`fmn.api.edge` calls it)."""

    def __init__(self) -> None:
        # The labelled children, found once (labels() takes a lock and builds a key each time).
        self._latency: dict[tuple[str, str], Any] = {}
        self._requests: dict[tuple[str, str, int], Any] = {}

    def _route(self, scope: Scope) -> str:
        """The route's template: a bounded label, unlike the path."""
        path = getattr(scope.get("route"), "path", None)
        if not isinstance(path, str):
            return "unmatched"
        return path

    def record(self, scope: Scope, status: int, seconds: float) -> None:
        route = self._route(scope)
        method = scope.get("method", "")
        latency = self._latency.get((method, route))
        if latency is None:
            latency = self._latency[method, route] = LATENCY.labels(method, route)
        latency.observe(seconds)
        key = (method, route, status)
        counter = self._requests.get(key)
        if counter is None:
            counter = self._requests[key] = REQUESTS.labels(method, route, str(status))
        counter.inc()


def watch_announcer(announcer: Announcer) -> None:
    """The announcement gauges read the running app's announcer at scrape time."""
    ANNOUNCEMENTS_PENDING.set_function(lambda: announcer.pending)
    ANNOUNCEMENTS_FAILED.set_function(lambda: announcer.failed)


async def metrics_endpoint(request: Request) -> Response:
    """/metrics on the API's own port: only with `api.metrics_public` (else `api.metrics_port`
    serves the same registry apart)."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

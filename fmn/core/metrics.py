"""Prometheus metrics for the processes that have no web server of their own (the consumer and
the senders): a small HTTP endpoint on the port their settings name. The API serves /metrics
itself."""

from __future__ import annotations

import logging

from prometheus_client import start_http_server

log = logging.getLogger(__name__)


def serve_metrics(port: int | None, host: str = "0.0.0.0") -> None:  # noqa: S104 - scraped from outside
    """Serve /metrics on `port` in a background thread; nothing when `port` is None."""
    if port is None:
        return
    start_http_server(port, addr=host)
    log.info("metrics on http://%s:%d/metrics", host, port)

"""Prometheus metrics on a port of their own: the consumer and the senders have no other web
server, and the API keeps its metrics off its public port unless `api.metrics_public`."""

from __future__ import annotations

import logging
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app, start_http_server
from prometheus_client.exposition import ThreadingWSGIServer

log = logging.getLogger(__name__)


class _SharedPortServer(ThreadingWSGIServer):
    # Each of `fmn api`'s worker processes serves its own metrics on the same port, as on
    # the API's port: the kernel hands each scrape to one of them.
    allow_reuse_port = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def serve_registry(port: int, host: str, registry: CollectorRegistry) -> WSGIServer:
    """Serve `registry` at http://host:port/metrics in a background thread; `shutdown()` stops
    it."""
    server = make_server(
        host,
        port,
        make_wsgi_app(registry),
        server_class=_SharedPortServer,
        handler_class=_QuietHandler,
    )
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    log.info("metrics on http://%s:%d/metrics", host, server.server_port)
    return server


def serve_metrics(port: int | None, host: str = "0.0.0.0") -> None:  # noqa: S104 - scraped from outside
    """Serve /metrics on `port` in a background thread; nothing when `port` is None."""
    if port is None:
        return
    start_http_server(port, addr=host)
    log.info("metrics on http://%s:%d/metrics", host, port)

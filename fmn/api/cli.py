"""`fmn api`: serve the API (and the built web app) with uvicorn."""

from __future__ import annotations

import click

from fmn.core.commands import signed_settings_or_fail


@click.command()
@click.option("--host", default=None, help="Address to listen on [api.host].")
@click.option("--port", type=int, default=None, help="Port to listen on [api.port].")
@click.option("--workers", type=int, default=None, help="Worker processes [api.workers].")
def api(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the REST API under /api/v1 (and the web app at / when it is built)."""
    import uvicorn

    settings = signed_settings_or_fail()
    uvicorn.run(
        "fmn.api.app:app_factory",
        factory=True,
        host=host or settings.api.host,
        port=port or settings.api.port,
        workers=workers or settings.api.workers,
        proxy_headers=True,
        access_log=False,
        log_level="info",
        # uvicorn kills a worker that misses a 5 s health ping; a busy or slowly starting
        # worker on a loaded machine misses it, and the restarts made things worse.
        timeout_worker_healthcheck=60,
    )

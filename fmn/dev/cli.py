"""`fmn run`: the whole system in one process, on embedded stand-ins for every service that is
not configured (fmn.dev.embedded says which), until Ctrl-C or SIGTERM."""

from __future__ import annotations

import click

from fmn.core.commands import settings_or_fail


@click.command()
@click.option("--host", default=None, help="Address to listen on [api.host].")
@click.option("--port", type=int, default=None, help="Port to listen on [api.port].")
def run(host: str | None, port: int | None) -> None:
    """Run everything in one process: API and web app, consumer, senders, and on embedded
    defaults a built-in OIDC provider, a sample directory, an SMTP sink and a demo feed."""
    import asyncio
    import logging

    # Alembic lists its plugins when imported: not news to someone starting the embedded run.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

    from fmn.dev.embedded import plan
    from fmn.dev.runner import Runner, RunnerError, migrate

    embedded = plan(settings_or_fail(), host, port)
    try:
        migrate(embedded.settings.database.url)
        code = asyncio.run(Runner(embedded).main())
    except RunnerError as exc:
        raise click.ClickException(str(exc)) from None
    raise SystemExit(code)

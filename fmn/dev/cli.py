"""`fmn run`: the whole system in one process, on embedded stand-ins for every service that is
not configured (fmn.dev.embedded says which), until Ctrl-C or SIGTERM."""

from __future__ import annotations

import click

from fmn.core.commands import settings_or_fail


@click.command()
@click.option("--host", default=None, help="Address to listen on [api.host].")
@click.option("--port", type=int, default=None, help="Port to listen on [api.port].")
@click.option(
    "--builtin-login",
    is_flag=True,
    help="Log in through the built-in identity provider at /idp: pick any user, admins "
    "included, no password (and serve the dev routes /api/v1/dev/*). For a development "
    "machine only: `make run` asks for it.",
)
def run(host: str | None, port: int | None, builtin_login: bool) -> None:
    """Run everything in one process: API and web app, consumer, senders, and on embedded
    defaults a sample directory, an SMTP sink and a demo feed (and, with --builtin-login, a
    password-less identity provider)."""
    import asyncio
    import logging

    # Alembic lists its plugins when imported: not news to someone starting the embedded run.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

    from fmn.dev.embedded import is_loopback, plan
    from fmn.dev.runner import Runner, RunnerError, migrate

    embedded = plan(settings_or_fail(), host, port, builtin_login=builtin_login)
    if builtin_login and not is_loopback(embedded.settings.api.host):
        logging.getLogger("fmn.run").warning(
            "\n%s\nWARNING: --builtin-login on %s, not a loopback address: ANYONE WHO CAN "
            "REACH THIS ADDRESS CAN LOG IN AS ANY USER, ADMINS INCLUDED, WITHOUT A PASSWORD."
            "\n%s",
            "!" * 78,
            embedded.settings.api.host,
            "!" * 78,
        )
    try:
        migrate(embedded.settings.database.url)
        code = asyncio.run(Runner(embedded).main())
    except RunnerError as exc:
        raise click.ClickException(str(exc)) from None
    raise SystemExit(code)

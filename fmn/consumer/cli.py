"""`fmn consumer`: run the bus consumer until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import signal

import click
import uvloop

from fmn.core.commands import signed_settings_or_fail


@click.command()
def consumer() -> None:
    """Consume the bus, match rules and publish work items for the senders."""
    from fmn.consumer.service import Consumer, ConsumerFailed
    from fmn.core.metrics import serve_metrics
    from fmn.core.task_dump import dump_tasks_on_sigusr1

    settings = signed_settings_or_fail()
    serve_metrics(settings.consumer.metrics_port)

    async def main() -> None:
        service = Consumer(settings)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(service.stop()))
        dump_tasks_on_sigusr1(loop)
        await service.start()
        await service.run()

    # uvloop: the consumer's time is mostly in the event loop and socket writes (one per
    # AMQP frame); uvloop does both in C.
    try:
        uvloop.run(main())
    except ConsumerFailed as exc:  # logged with its traceback; exit with an error status
        raise click.ClickException(str(exc)) from exc

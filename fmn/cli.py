"""The `fmn` command: one sub-command per process or task.

Sub-commands live beside the code they run and are imported only when used, so that
`fmn db upgrade` does not pay for importing the API or the senders.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from typing import Any

import click

from fmn.core.settings import ConfigError
from fmn.transport.queue_types import QueueMismatch

# Errors that say what is wrong with the configuration in one line: no traceback.
ONE_LINE_ERRORS = (ConfigError, QueueMismatch)

# name -> "module:attribute"
COMMANDS = {
    "api": "fmn.api.cli:api",
    "consumer": "fmn.consumer.cli:consumer",
    "sender": "fmn.senders.cli:sender",
    "deadletter": "fmn.senders.cli:deadletter",
    "db": "fmn.db.cli:db",
    "rules": "fmn.rules.cli:rules",
    "import-fmn3": "fmn.rules.cli:import_fmn3",
    "match": "fmn.rules.match_cli:match",
    "directory": "fmn.directory.cli:directory",
    "run": "fmn.dev.cli:run",
    "status": "fmn.health.status:status",
    "config": "fmn.core.config_cli:config",
}


def _available(name: str) -> bool:
    module = COMMANDS[name].split(":")[0]
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in COMMANDS if _available(name))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS or not _available(cmd_name):
            return None
        module_name, attr = COMMANDS[cmd_name].split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ONE_LINE_ERRORS as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=LazyGroup)
@click.option("--log-level", default="INFO", show_default=True, help="Logging level.")
def cli(log_level: str) -> None:
    """fmn: notifications for a community message bus."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

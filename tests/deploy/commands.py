"""Checks that a command line of a deployment file is a real `fmn` invocation: click parses it
(sub-commands, options, choices such as the sender's protocol, paths that must exist) without
running it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import click

from fmn.cli import cli
from tests.deploy.conftest import ROOT

# Where the image and the systemd units keep what a checkout has at its root.
INSTALL_PATHS = {"/opt/fmn/app/": f"{ROOT}/"}


def localized(args: Sequence[str], paths: Mapping[str, str] = INSTALL_PATHS) -> list[str]:
    out = []
    for arg in args:
        for installed, here in paths.items():
            if arg.startswith(installed):
                arg = here + arg[len(installed) :]
        out.append(arg)
    return out


def parse_fmn(args: Sequence[str]) -> list[str]:
    """The sub-command path of `fmn ARGS` (e.g. ["sender"], ["db", "upgrade"]); raises
    click.UsageError (or a subclass) when click would refuse the command line."""
    rest = localized(args)
    if not rest:
        raise click.UsageError("no sub-command")
    command: click.Command = cli
    context = command.make_context("fmn", list(rest))
    path: list[str] = []
    while isinstance(command, click.Group):
        # The group's own options are parsed; what is left starts with the sub-command (click
        # keeps that first word apart, in `_protected_args` since `protected_args` is deprecated).
        remaining = [*getattr(context, "_protected_args", ()), *context.args]
        name, sub, remaining = command.resolve_command(context, remaining)
        if sub is None or name is None:
            raise click.UsageError(f"no such command: {remaining}")
        path.append(name)
        context = sub.make_context(name, list(remaining), parent=context)
        command = sub
    return path

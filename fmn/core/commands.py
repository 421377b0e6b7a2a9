"""What every `fmn` sub-command shares: the settings, or a one-line error and a non-zero exit."""

from __future__ import annotations

import click

from fmn.core.settings import ConfigError, Settings, get_settings


def settings_or_fail() -> Settings:
    try:
        return get_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None

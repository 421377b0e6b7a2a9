"""What every `fmn` sub-command shares: the settings, or a one-line error and a non-zero exit."""

from __future__ import annotations

import click

from fmn.core.settings import ConfigError, Settings, get_settings


def settings_or_fail() -> Settings:
    try:
        return get_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def signed_settings_or_fail() -> Settings:
    """The settings of a process that signs or checks unsubscribe links (`fmn api`, `fmn
    consumer`, `fmn sender`): a one-line error and a non-zero exit when the keys are unusable."""
    from fmn.core.secrets import check_signing_keys

    settings = settings_or_fail()
    try:
        check_signing_keys(settings.api)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    return settings

"""Loading the settings the way a deployed process does: a TOML file and FMN_ variables."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

from pydantic import BaseModel

from fmn.core import settings as settings_module
from fmn.core.settings import Settings, load_settings

# ${NAME:-default} and ${NAME} as compose interpolates them (the variables are unset here).
# ${VAR}, ${VAR:-default}, ${VAR-default}; ${VAR:?message} (required) gives nothing.
INTERPOLATION = re.compile(r"\$\{[A-Za-z0-9_]+(?::?-([^}]*)|:?\?[^}]*)?\}")


def interpolated(value: str) -> str:
    return INTERPOLATION.sub(lambda m: m.group(1) or "", value)


@contextmanager
def fmn_environment(env: Mapping[str, str], config: Path | None = None) -> Iterator[None]:
    """Only these FMN_ variables (and FMN_CONFIG when a file is given) while inside."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FMN_")}
    clean.update(env)
    if config is not None:
        clean["FMN_CONFIG"] = str(config)
    with mock.patch.dict(os.environ, clean, clear=True):
        settings_module.get_settings.cache_clear()
        try:
            yield
        finally:
            settings_module.get_settings.cache_clear()


def load(env: Mapping[str, str], config: Path | None = None) -> Settings:
    with fmn_environment(env, config):
        return load_settings()


def setting_exists(variable: str) -> bool:
    """Whether FMN_SECTION__KEY names a key of the settings (pydantic-settings would put an
    unknown top-level name aside silently)."""
    if not variable.startswith("FMN_") or variable == "FMN_CONFIG":
        return variable == "FMN_CONFIG"
    model: type[BaseModel] = Settings
    parts = variable.removeprefix("FMN_").lower().split("__")
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        last = i == len(parts) - 1
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if last:
                return False  # a whole section cannot be one variable here
            model = annotation
        elif not last:
            return False
    return True

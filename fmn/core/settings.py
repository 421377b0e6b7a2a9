"""Typed settings: one pydantic-settings class, read from a TOML file and the environment.

The file is ``$FMN_CONFIG`` (default ``/etc/fmn/fmn.toml``); environment variables such as
``FMN_DATABASE__URL`` override it. Unknown keys and wrong types are refused with one line
naming them.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_CONFIG_PATH = "/etc/fmn/fmn.toml"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatabaseSettings(Section):
    url: str = "sqlite+aiosqlite:///fmn.sqlite"
    echo: bool = False
    pool_size: int = 10


class CacheSettings(Section):
    # cashews URL: "mem://" (embedded default) or "redis://host:6379/0".
    url: str = "mem://"
    # Directory look-ups (FASJSON, dist-git) are cached this long, in seconds.
    directory_ttl: int = 3600


class BusSettings(Section):
    """The public bus the consumer reads and the API publishes rule changes on."""

    # "memory://" selects the in-process bus of the embedded default.
    amqp_url: str = "memory://"
    exchange: str = "amq.topic"
    queue: str = "fmn"
    routing_keys: list[str] = Field(default_factory=lambda: ["#"])
    prefetch_count: int = 100
    # Prepended to topics the API publishes (Fedora uses "org.fedoraproject.prod").
    topic_prefix: str = ""


class SendQueueSettings(Section):
    """The private exchange between the consumer and the senders."""

    amqp_url: str = "memory://"
    exchange: str = "fmn.send"
    # Seconds before each retry of a failed send; after the last, the item is dead-lettered.
    retry_delays: list[int] = Field(default_factory=lambda: [10, 60, 300, 1800])


class DirectorySettings(Section):
    fasjson_url: str = "https://fasjson.fedoraproject.org"
    distgit_url: str = "https://src.fedoraproject.org"
    # A JSON directory file served by the local directory server (embedded default and tests).
    local_file: str | None = None
    timeout: float = 10.0
    retries: int = 3
    default_matrix_server: str = "fedora.im"


class OIDCSettings(Section):
    provider_url: str = "https://id.fedoraproject.org/openidc"
    client_id: str = "fmn"
    client_secret: str = ""
    # Public client id the web app uses for the authorization code + PKCE flow.
    frontend_client_id: str = "fmn-frontend"
    scopes: list[str] = Field(
        default_factory=lambda: [
            "openid",
            "profile",
            "email",
            "https://id.fedoraproject.org/scope/groups",
        ]
    )
    # How a bearer token is checked: RFC 7662 introspection, the userinfo endpoint, or both.
    token_check: Literal["introspection", "userinfo", "both"] = "userinfo"  # noqa: S105
    admin_groups: list[str] = Field(default_factory=lambda: ["sysadmin-main"])


class EmailSenderSettings(Section):
    from_address: str = "Fedora Notifications <notifications@fedoraproject.org>"
    smtp_host: str = "localhost"
    smtp_port: int = 25
    tls: Literal["none", "starttls", "tls"] = "none"
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0
    list_id: str = "fmn.fedoraproject.org"


class IRCSenderSettings(Section):
    host: str = "irc.libera.chat"
    port: int = 6697
    tls: bool = True
    nickname: str = "fedora-notif"
    sasl_username: str | None = None
    sasl_password: str | None = None
    # Flood control: one line every `line_interval` seconds after a burst of `burst` lines.
    line_interval: float = 2.0
    burst: int = 5


class MatrixSenderSettings(Section):
    homeserver: str = "https://fedora.ems.host"
    user_id: str = "@notifs-bot:fedora.im"
    access_token: str = ""


class SenderSettings(Section):
    email: EmailSenderSettings = Field(default_factory=EmailSenderSettings)
    irc: IRCSenderSettings = Field(default_factory=IRCSenderSettings)
    matrix: MatrixSenderSettings = Field(default_factory=MatrixSenderSettings)
    # Past this many waiting items for one destination, the rest collapses into one digest.
    digest_threshold: int = 20


class ArchiveSettings(Section):
    retention_days: int = 14
    prune_interval: int = 3600


class APISettings(Section):
    host: str = "127.0.0.1"
    port: int = 8080
    cors_origins: list[str] = Field(default_factory=lambda: ["http://localhost:5173"])
    metrics_public: bool = True
    page_size: int = 50
    max_page_size: int = 500
    # Secret for signed one-click unsubscribe links; set it in production.
    secret_key: str = "change-me"  # noqa: S105


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FMN_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    public_url: str = "https://notifications.fedoraproject.org"
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    bus: BusSettings = Field(default_factory=BusSettings)
    send_queue: SendQueueSettings = Field(default_factory=SendQueueSettings)
    directory: DirectorySettings = Field(default_factory=DirectorySettings)
    oidc: OIDCSettings = Field(default_factory=OIDCSettings)
    senders: SenderSettings = Field(default_factory=SenderSettings)
    archive: ArchiveSettings = Field(default_factory=ArchiveSettings)
    api: APISettings = Field(default_factory=APISettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = config_path()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


class ConfigError(Exception):
    """A configuration problem, described in one line."""


def config_path() -> Path | None:
    """The TOML file to read, or None when the default path does not exist."""
    explicit = os.environ.get("FMN_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"FMN_CONFIG: no such file: {path}")
        return path
    default = Path(DEFAULT_CONFIG_PATH)
    return default if default.is_file() else None


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming every offending key."""
    parts = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown key '{key}'")
        else:
            parts.append(f"'{key}': {err['msg']}")
    return "invalid configuration: " + "; ".join(parts)


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, turning every problem into a ConfigError with one clear line."""
    import tomllib

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid configuration file {config_path()}: {exc}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()

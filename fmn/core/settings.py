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

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
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


class BrokerSection(Section):
    """Where a RabbitMQ is, and how fmn declares its queues there."""

    # "memory://" selects the in-process broker of the embedded default.
    amqp_url: str = "memory://"
    # The nodes of a RabbitMQ cluster, tried in this order; when given, they replace amqp_url.
    # A process connects to the first that answers, and after a lost connection to the next.
    amqp_urls: list[str] = Field(default_factory=list)
    # "default": no x-queue-type, the vhost's default type decides; "quorum": replicated queues
    # that survive the loss of a cluster node (docs/reliability.md, "A broker cluster");
    # "classic". A queue that exists with another type is refused at start with what to do.
    queue_type: Literal["default", "quorum", "classic"] = "default"

    @field_validator("amqp_urls")
    @classmethod
    def _cluster_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("amqp://", "amqps://")):
                raise ValueError(f"{url!r}: the nodes of a RabbitMQ cluster are amqp(s):// URLs")
        return value

    @property
    def broker_urls(self) -> list[str]:
        return list(self.amqp_urls) or [self.amqp_url]

    @property
    def in_process(self) -> bool:
        return self.broker_urls[0].startswith("memory://")


class BusSettings(BrokerSection):
    """The public bus the consumer reads and the API publishes rule changes on."""

    exchange: str = "amq.topic"
    queue: str = "fmn"
    routing_keys: list[str] = Field(default_factory=lambda: ["#"])
    prefetch_count: int = 1000
    # Prepended to topics the API publishes (Fedora uses "org.fedoraproject.prod").
    topic_prefix: str = ""
    # AMQP client properties the broker shows for fmn's connections (app, app_url...).
    client_properties: dict[str, str | list[str]] = Field(default_factory=dict)
    # A fedora-messaging TOML file whose amqp_url, [tls] and [client_properties] replace
    # amqp_url and client_properties here (`fmn config from-fedora-messaging` converts one).
    fedora_messaging_config: str | None = None

    @model_validator(mode="after")
    def _read_fedora_messaging(self) -> BusSettings:
        if self.fedora_messaging_config and self.amqp_urls:
            raise ValueError("give either fedora_messaging_config or amqp_urls, not both")
        if self.fedora_messaging_config:
            from fmn.transport.fedora_messaging import read_fedora_messaging_config

            bus = read_fedora_messaging_config(self.fedora_messaging_config)
            self.amqp_url = bus.amqp_url
            self.client_properties = {**bus.client_properties, **self.client_properties}
        return self


class SendQueueSettings(BrokerSection):
    """The private exchange between the consumer and the senders."""

    exchange: str = "fmn.send"
    # Seconds before each retry of a failed send; after the last, the item is dead-lettered.
    # Floats so tests can use sub-second delays.
    retry_delays: list[float] = Field(default_factory=lambda: [10.0, 60.0, 300.0, 1800.0])
    # Unacked AMQP messages a sender holds at once (each carries up to
    # consumer.items_per_message work items); the items must exceed senders.digest_threshold so
    # one flooded destination cannot starve the others before its surplus is folded into a digest.
    sender_prefetch: int = 200


class DirectorySettings(Section):
    fasjson_url: str = "https://fasjson.fedoraproject.org"
    distgit_url: str = "https://src.fedoraproject.org"
    # A JSON directory file read into memory instead of FASJSON and dist-git (embedded default,
    # compose demo); used only while both URLs keep their defaults.
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
    # The claim naming the user in userinfo answers (Ipsilon: "nickname"; Keycloak and most
    # others: "preferred_username"), and in introspection answers (RFC 7662: "username").
    userinfo_username_claim: str = "nickname"
    introspection_username_claim: str = "username"
    # The claim listing the user's groups (userinfo, or introspection when the provider adds it).
    groups_claim: str = "groups"
    # Seconds a checked identity is trusted before the provider is asked again (never past the
    # token's expiry): how long a revoked token may still work, whatever `token_check` is.
    identity_ttl: int = Field(60, ge=1)
    # Client applications whose tokens the API accepts, besides `frontend_client_id`: checked
    # against the `client_id`/`aud` of introspection answers (userinfo alone cannot tell).
    allowed_clients: list[str] = Field(default_factory=list)
    # Seconds a token the provider refused is refused without asking it again.
    refused_ttl: int = Field(30, ge=1)
    # Tokens one client address may have checked by the provider per minute (429 beyond):
    # tokens already known are not counted.
    token_checks_per_minute: int = Field(60, ge=1)
    # Timeout in seconds of each call to the provider.
    timeout: float = 10.0


class EmailSenderSettings(Section):
    from_address: str = "Fedora Notifications <notifications@fedoraproject.org>"
    smtp_host: str = "localhost"
    smtp_port: int = 25
    tls: Literal["none", "starttls", "tls"] = "none"
    username: str | None = None
    password: str | None = None
    # A username/password is refused over a connection without TLS (tls = "none") unless this
    # says the path is trusted (a relay on the same host, a private network).
    allow_insecure_auth: bool = False
    timeout: float = 30.0
    list_id: str = "fmn.fedoraproject.org"
    # SMTP connections kept open and used in parallel by one sender process (sends wait on the
    # server's replies, so parallel connections are what makes one process fast).
    connections: int = 8
    # TLS trust: a CA bundle file (None: the system's), or no certificate check at all.
    ca_file: str | None = None
    validate_certs: bool = True


class IRCSenderSettings(Section):
    host: str = "irc.libera.chat"
    port: int = 6697
    tls: bool = True
    nickname: str = "fedora-notif"
    sasl_username: str | None = None
    sasl_password: str | None = None
    # A SASL password is refused over a connection without TLS unless this says the path is
    # trusted.
    allow_insecure_auth: bool = False
    # Flood control: one line every `line_interval` seconds after a burst of `burst` lines.
    line_interval: float = 2.0
    burst: int = 5
    # A team's channel (team rules) limits on its own too: one line every
    # `channel_line_interval` seconds after `channel_burst`; past `channel_digest_threshold`
    # lines waiting for it, the rest folds into one digest line (at least 1).
    channel_line_interval: float = 4.0
    channel_burst: int = 3
    channel_digest_threshold: int = Field(5, ge=1)
    # Seconds to wait for the server to answer a PING after a notification, which confirms the
    # PRIVMSG was accepted (or tells that the nick does not exist).
    confirm_timeout: float = 10.0
    # Reconnect backoff: doubles from min to max seconds.
    reconnect_min: float = 1.0
    reconnect_max: float = 120.0
    # CA bundle to trust for the server's certificate (None: the system's).
    ca_file: str | None = None


class MatrixSenderSettings(Section):
    homeserver: str = "https://fedora.ems.host"
    user_id: str = "@notifs-bot:fedora.im"
    access_token: str = ""
    # Own rate limit, messages per second after a burst; Synapse's default for a non-exempt
    # user is 0.2/s with a burst of 10. Raise it when the bot is exempt. 429s are honoured too.
    messages_per_second: float = 0.2
    burst: int = 10
    timeout: float = 30.0
    # How long a recipient's room membership (joined/invited) is trusted before it is checked
    # again, to re-invite people who left without a request per message.
    membership_ttl: float = 600.0
    # While the homeserver refuses the access token, it is asked again at most this often
    # (seconds); the notifications in between are dead-lettered without a request.
    token_recheck: float = 60.0


class SenderSettings(Section):
    email: EmailSenderSettings = Field(default_factory=EmailSenderSettings)
    irc: IRCSenderSettings = Field(default_factory=IRCSenderSettings)
    matrix: MatrixSenderSettings = Field(default_factory=MatrixSenderSettings)
    # Past this many waiting items for one destination, the rest collapses into one digest
    # (at least 1: a destination with nothing waiting sends at once).
    digest_threshold: int = Field(20, ge=1)
    # A collapsed burst is sent this many seconds after it started, so the burst's tail joins it.
    backlog_digest_delay: float = 60.0
    # Daily digests go out at this hour of the user's local time.
    daily_digest_hour: int = 8
    # How often held notifications are checked for being due, in seconds.
    digest_poll_interval: float = 5.0
    # Idempotency keys of sent notifications are remembered this long (Redis TTL, seconds).
    sent_key_ttl: int = 7 * 24 * 3600
    # User settings (digest mode, quiet hours, mute) are re-read after this many seconds.
    user_settings_ttl: float = 60.0
    # Delivery-log rows are written in batches at most this many seconds apart.
    log_flush_interval: float = 1.0
    # IRC and Matrix run one sender each: a second one waits (standby) until the first's lease,
    # renewed every third of this many seconds, expires.
    instance_lease: float = 30.0
    # Redis for the senders' durable state (sent keys, held notifications, Matrix rooms);
    # None uses cache.url, and "mem://" keeps it in memory (embedded default only).
    state_url: str | None = None
    # Port of the sender process's Prometheus /metrics endpoint; none when unset.
    metrics_port: int | None = None


class ConsumerSettings(Section):
    # Messages handled together: one publish round trip per batch.
    batch_size: int = 200
    # Seconds to wait for more messages before handling a batch that is not full.
    batch_wait: float = 0.005
    # Batches handled at once (one parses while others wait for confirms);
    # bus.prefetch_count should cover batch_size * concurrent_batches.
    concurrent_batches: int = 4
    # Handled messages are archived (then acked) together, in one transaction, once this many
    # seconds have passed or batch_size of them are waiting: far fewer transactions than one
    # per batch at moderate rates. Their work items went out already; only the ack waits.
    archive_wait: float = 0.05
    # Work items of one protocol sent in one AMQP message (JSON Lines; the sender settles each
    # on its own): publishing one message per item cost a third of the consumer's CPU.
    items_per_message: int = Field(default=50, ge=1, le=1000)
    # A message body larger than this is refused (dead-lettered to "<queue>.rejected").
    max_body_bytes: int = 8 * 1024 * 1024
    # Seconds between full rebuilds of the rule index, a safety net for a missed change message.
    rebuild_interval: int = 3600
    # Seconds between writes of the per-rule generated counts.
    counts_interval: float = 5.0
    # Seconds to wait before trying again when a directory look-up or the database fails.
    retry_delay: float = 5.0
    # Seconds between checks for rules whose mute has ended (they generate again after it).
    unmute_interval: float = 30.0
    # Port of the Prometheus /metrics endpoint; none when unset (give each replica its own).
    metrics_port: int | None = None


class ArchiveSettings(Section):
    retention_days: int = Field(14, ge=1)
    # Seconds between prunes, and messages deleted per transaction while pruning.
    prune_interval: float = 3600
    prune_batch: int = Field(5000, ge=1)


class APISettings(Section):
    host: str = "127.0.0.1"
    port: int = 8080
    cors_origins: list[str] = Field(default_factory=lambda: ["http://localhost:5173"])
    # Serve Prometheus /metrics on the API's own port, to anyone who reaches it. Off by default:
    # scrape the API on `metrics_port` instead, which the Ingress and the compose file never
    # publish.
    metrics_public: bool = False
    # Port of the API's Prometheus /metrics endpoint, apart from the public one; none when unset.
    metrics_port: int | None = None
    page_size: int = 50
    max_page_size: int = 500
    # A list asked for without paging parameters (as FMN 3's clients ask) is answered whole, up
    # to this many items; beyond, 422 (ask for pages or narrow the search).
    max_list_size: int = 10_000
    # Keys that sign one-click unsubscribe links: the first signs, every one verifies. No default:
    # `fmn api`, `fmn consumer` and `fmn sender` refuse to start without one of at least 32 bytes
    # (`fmn run` makes its own). Rotate by putting a new key first and dropping the old one once
    # the links it signed have expired (docs/security.md).
    secret_keys: list[str] = Field(default_factory=list)
    # The former single key, still read: it is used when secret_keys is empty.
    secret_key: str | None = None
    # Days an unsubscribe link works after its mail was sent.
    unsubscribe_link_days: int = Field(default=180, ge=1)
    # Worker processes `fmn api` starts (each has its own caches and connections).
    workers: int = 1
    # Largest request body accepted, in bytes (413 beyond).
    max_body_size: int = 1_048_576
    # Requests per user and minute on the endpoints that ask the directory or read the archive
    # (user search, user info/groups/destinations, artifacts, rule previews); 429 beyond.
    rate_limit_per_minute: int = 120
    # Most rules one user may own.
    max_rules_per_user: int = 500
    # A rule preview takes at most this many seconds, directory look-ups included, then answers
    # with what it has read (marked incomplete).
    preview_time_budget: float = 1.5
    # Previews running at once in one process (each keeps a CPU busy for up to the budget);
    # a preview that cannot start within its budget is refused (429), as is a second preview
    # of a user whose first is still running (in any process).
    preview_concurrency: int = 2
    # Most usernames or group names (each expanded through the directory) and most artifacts a
    # previewed rule may list (422 beyond).
    preview_max_names: int = Field(100, ge=1)
    preview_max_artifacts: int = Field(500, ge=1)
    # A preview above this many notifications a day suggests a digest (nothing is refused).
    preview_digest_threshold: float = Field(20.0, ge=0)
    # The built web app served at "/" (SPA); None finds frontend/dist in a source checkout.
    frontend_dir: str | None = None
    # Seconds between attempts to announce a committed rule change on the bus; after the last
    # the announcement is dropped with an error (consumers also rebuild their index periodically).
    announce_retry_delays: list[float] = Field(
        default_factory=lambda: [1.0, 5.0, 30.0, 120.0, 600.0]
    )


class WebSettings(Section):
    """Web notifications: the inbox the `web` sender fills, its live stream, Web Push, feeds."""

    # Inbox entries older than this are pruned, every prune_interval seconds, prune_batch rows
    # per transaction.
    retention_days: int = Field(90, ge=1)
    prune_interval: float = 3600
    prune_batch: int = Field(5000, ge=1)
    # Inbox entries the web sender stores at once (each its own transaction).
    concurrency: int = Field(8, ge=1)
    # Seconds between the stream's heartbeat comments (proxies close idle connections).
    heartbeat: float = Field(15.0, gt=0)
    # Web Push (VAPID, RFC 8292): the application server's P-256 private key, base64url (the
    # 32-byte private number) or PEM. No default: without it there is no Web Push (`fmn run`
    # makes one in its data folder). py-vapid's `vapid --gen` writes one (private_key.pem).
    vapid_private_key: str | None = None
    # Who the push services may contact about this server (a mailto: or https: URL).
    vapid_subject: str = "mailto:admin@fedoraproject.org"
    # Seconds a push service keeps a push for an offline browser, and the request's timeout.
    push_ttl: int = Field(86400, ge=0)
    push_timeout: float = Field(10.0, gt=0)
    # Push subscriptions' endpoints must be https:// URLs; http:// only for a test push service.
    push_allow_http: bool = False
    # Push subscriptions' endpoints must be on public addresses: the API refuses a private,
    # loopback, link-local or reserved one (or a name resolving only to such), and the web sender
    # connects to none (fmn.inbox.public_hosts). True only for development and tests, with a
    # push-service stand-in on this machine: it lets users make the server call its own network.
    push_allow_private_hosts: bool = False

    @field_validator("vapid_private_key")
    @classmethod
    def _usable_vapid_key(cls, value: str | None) -> str | None:
        if not value:
            return None  # "" (an unset environment variable) is no key
        from fmn.core.secrets import vapid_private_key

        try:
            vapid_private_key(value)
        except ValueError as exc:
            raise ValueError(
                f"not a P-256 private key ({exc}): give the base64url of its 32-byte private "
                "number or a PEM key"
            ) from None
        return value


class DevSettings(Section):
    """`fmn run`, the embedded default: the whole system in one process, for development and
    demos. Each part left at its default elsewhere in this file (database, directory, OIDC
    provider, SMTP server, IRC network, Matrix account) is replaced by its embedded stand-in;
    a part configured otherwise is used as configured."""

    # Where the embedded run keeps its files (the SQLite database, when database.url is left
    # at its default).
    data_dir: str = "var"
    # Real bus messages (JSON Lines files) the demo feed replays; a relative path starts from
    # the current directory. When it is missing, the run goes on without a feed.
    corpus_dir: str = "../shared/corpus"
    # Seconds between two messages of the demo feed; 0 turns the feed off.
    feed_interval: float = 2.0
    # The most frequent usernames of the corpus are renamed into the sample users, this many
    # for each, so the replayed messages concern people who can log in.
    feed_names_per_user: int = 3
    # Port of the local SMTP sink the email sender delivers to (0: any free port).
    smtp_port: int = 0
    # How many mails and IRC/Matrix lines the embedded run keeps for the web app (the latest).
    outbox_size: int = 500


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
    consumer: ConsumerSettings = Field(default_factory=ConsumerSettings)
    archive: ArchiveSettings = Field(default_factory=ArchiveSettings)
    api: APISettings = Field(default_factory=APISettings)
    web: WebSettings = Field(default_factory=WebSettings)
    dev: DevSettings = Field(default_factory=DevSettings)

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

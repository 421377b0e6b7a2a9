"""Which parts of `fmn run` are embedded stand-ins, and the settings the run's components get.

A part is replaced by its stand-in only while its settings are left at their defaults (which
name Fedora's production services, never to be used from a development machine by accident):

    database.url         default  -> SQLite in dev.data_dir, migrated at start
    directory.*          default  -> the packaged sample directory (or directory.local_file)
    (log-in)             only with `fmn run --builtin-login`: the built-in provider at <url>/idp
                         (pick a user, no password) and the dev routes; never inferred from
                         oidc.provider_url, which is used as configured otherwise
    senders.email        localhost:25 -> the SMTP sink
    senders.irc.host     default  -> IRC lines logged and kept for the web app
    senders.matrix       no access_token -> Matrix messages logged and kept for the web app

The bus and the cache need nothing here: memory:// and mem:// are their own defaults.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from fmn.core.secrets import check_signing_keys, configured_keys, data_dir_key
from fmn.core.settings import (
    DatabaseSettings,
    DirectorySettings,
    EmailSenderSettings,
    IRCSenderSettings,
    Settings,
)
from fmn.dev.idp import SampleUser
from fmn.directory.local import DirectoryData
from fmn.inbox import vapid

SAMPLE_DIRECTORY = Path(__file__).resolve().with_name("sample-directory.json")
IDP_PATH = "/idp"
_ANY_ADDRESS = ("", "0.0.0.0", "::")  # noqa: S104 (compared with, not bound to)


@dataclass
class Embedded:
    settings: Settings
    url: str
    # Origins the web app may be opened at (the built-in provider redirects only to these).
    origins: frozenset[str]
    database: bool = False
    directory: bool = False
    oidc: bool = False
    email: bool = False
    irc: bool = False
    matrix: bool = False
    users: list[SampleUser] = field(default_factory=list)

    @property
    def parts(self) -> list[str]:
        names = ("database", "directory", "oidc", "email", "irc", "matrix")
        found = [name for name in names if getattr(self, name)]
        if self.settings.bus.in_process:
            found.append("bus")
        if self.settings.cache.url.startswith("mem://"):
            found.append("cache")
        return found

    def with_smtp_sink(self, host: str, port: int) -> None:
        email = self.settings.senders.email.model_copy(
            update={"smtp_host": host, "smtp_port": port, "tls": "none", "username": None}
        )
        senders = self.settings.senders.model_copy(update={"email": email})
        self.settings = self.settings.model_copy(update={"senders": senders})


def _url_host(host: str) -> str:
    if host in _ANY_ADDRESS:
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def sample_users(data: DirectoryData) -> list[SampleUser]:
    groups: dict[str, list[str]] = {}
    for name, group in sorted(data.groups.items()):
        for member in dict.fromkeys([*group.members, *group.sponsors]):
            groups.setdefault(member, []).append(name)
    users = []
    for username, entry in sorted(data.users.items()):
        emails = [e for e in entry.get("emails") or () if isinstance(e, str)]
        human = entry.get("human_name")
        users.append(
            SampleUser(
                username=username,
                name=human if isinstance(human, str) and human else username,
                email=emails[0] if emails else f"{username}@example.org",
                groups=tuple(groups.get(username, ())),
            )
        )
    return users


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def plan(
    settings: Settings,
    host: str | None = None,
    port: int | None = None,
    *,
    builtin_login: bool = False,
) -> Embedded:
    """The run's settings: `settings` with every part left at its default embedded, and the
    built-in identity provider when `builtin_login` asks for it (and only then)."""
    data_dir = Path(settings.dev.data_dir).resolve()
    # Unset keys: one made at random for this data folder and kept in it (set ones are
    # checked as for `fmn api`).
    keys = (
        check_signing_keys(settings.api)
        if configured_keys(settings.api)[1]
        else [data_dir_key(data_dir)]
    )
    api = settings.api.model_copy(
        update={
            "host": host or settings.api.host,
            "port": port or settings.api.port,
            "secret_keys": keys,
            "secret_key": None,
        }
    )
    # Web Push: unset, a key pair made for this data folder and kept in it.
    web = settings.web
    if not web.vapid_private_key:
        web = web.model_copy(update={"vapid_private_key": vapid.data_dir_key(data_dir)})
    url = f"http://{_url_host(api.host)}:{api.port}"
    if settings.public_url != Settings.model_fields["public_url"].default:
        url = settings.public_url.rstrip("/")
    origins = frozenset(
        {url, f"http://localhost:{api.port}", f"http://127.0.0.1:{api.port}", *api.cors_origins}
    )
    api.cors_origins = sorted(origins)
    update: dict[str, object] = {"public_url": url, "api": api, "web": web}
    run = Embedded(settings, url, origins)

    if settings.database.url == DatabaseSettings().url:
        data_dir.mkdir(parents=True, exist_ok=True)
        sqlite = f"sqlite+aiosqlite:///{data_dir / 'fmn.sqlite'}"
        update["database"] = settings.database.model_copy(update={"url": sqlite})
        run.database = True

    directory = settings.directory
    defaults = DirectorySettings()
    if (directory.fasjson_url, directory.distgit_url) == (
        defaults.fasjson_url,
        defaults.distgit_url,
    ):
        if directory.local_file is None:
            directory = directory.model_copy(update={"local_file": str(SAMPLE_DIRECTORY)})
            update["directory"] = directory
        run.directory = True
    run.users = sample_users(DirectoryData.from_file(directory.local_file or SAMPLE_DIRECTORY))

    if builtin_login:
        update["oidc"] = settings.oidc.model_copy(
            update={
                "provider_url": url + IDP_PATH,
                "client_secret": settings.oidc.client_secret or secrets.token_urlsafe(24),
            }
        )
        run.oidc = True

    email, email_defaults = settings.senders.email, EmailSenderSettings()
    run.email = (email.smtp_host, email.smtp_port) == (
        email_defaults.smtp_host,
        email_defaults.smtp_port,
    )
    run.irc = settings.senders.irc.host == IRCSenderSettings().host
    run.matrix = not settings.senders.matrix.access_token
    run.settings = settings.model_copy(update=update)
    return run

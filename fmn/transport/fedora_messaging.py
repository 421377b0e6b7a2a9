"""Fedora's bus settings as fedora-messaging keeps them: an operator points fmn at an existing
fedora-messaging TOML file (`bus.fedora_messaging_config`) or converts one with
`fmn config from-fedora-messaging`, instead of typing the broker URL, certificates and client
properties a second time.

What is taken: `amqp_url`, `[tls]` (ca_cert, keyfile, certfile) and `[client_properties]`. The
TLS files go into the URL's query, where aio-pika's AMQP library reads them (cafile, certfile,
keyfile); with a client certificate, the broker is asked for SASL EXTERNAL (the user is the
certificate's), as fedora-messaging does. Queues, bindings and callbacks are fmn's own.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

TLS_KEYS = {"ca_cert": "cafile", "certfile": "certfile", "keyfile": "keyfile"}


class FedoraMessagingConfigError(ValueError):
    """The file cannot give fmn its bus settings; the message says which file and why."""


@dataclass(frozen=True)
class FedoraMessagingBus:
    amqp_url: str
    client_properties: dict[str, Any] = field(default_factory=dict)


def read_fedora_messaging_config(path: str | Path) -> FedoraMessagingBus:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise FedoraMessagingConfigError(f"{path}: cannot read it ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise FedoraMessagingConfigError(f"{path}: not valid TOML ({exc})") from exc
    url = data.get("amqp_url")
    if not isinstance(url, str) or not url:
        raise FedoraMessagingConfigError(f"{path}: no amqp_url")
    tls = data.get("tls") or {}
    properties = data.get("client_properties") or {}
    if not isinstance(tls, dict) or not isinstance(properties, dict):
        raise FedoraMessagingConfigError(f"{path}: [tls] and [client_properties] must be tables")
    return FedoraMessagingBus(_with_tls(path, url, tls), dict(properties))


def _with_tls(path: Path, url: str, tls: dict[str, Any]) -> str:
    files = {TLS_KEYS[k]: str(v) for k, v in tls.items() if k in TLS_KEYS and v}
    if not files:
        return url
    parts = urlsplit(url)
    if parts.scheme != "amqps":
        raise FedoraMessagingConfigError(
            f"{path}: [tls] is set but amqp_url is not amqps://: the certificates would go unused"
        )
    for key, file in files.items():
        if not Path(file).is_file():
            raise FedoraMessagingConfigError(f"{path}: [tls] file {file} ({key}) does not exist")
    if ("certfile" in files) != ("keyfile" in files):
        raise FedoraMessagingConfigError(
            f"{path}: [tls] needs both certfile and keyfile, or neither"
        )
    query = dict(parse_qsl(parts.query))
    # fedora-messaging's own connection options (connection_attempts, retry_delay...) are
    # pika's; aio-pika reconnects on its own.
    query = {k: v for k, v in query.items() if k not in ("connection_attempts", "retry_delay")}
    query.update(files)
    if "certfile" in files:
        query["auth"] = "external"
    return urlunsplit(parts._replace(query=urlencode(query)))

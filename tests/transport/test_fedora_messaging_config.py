"""An operator points fmn at fedora-messaging's own TOML file (read as is, or converted by
`fmn config from-fedora-messaging`) instead of typing the bus settings again."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import tomllib
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from fmn.cli import cli
from fmn.core.settings import BusSettings
from tests.harness.smtp_server import self_signed_cert
from tests.transport.fedora_bus import broker_from, round_trip

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "fedora-messaging" / "fedora.toml"
FEDORA_URL = "amqps://fedora:@rabbitmq.fedoraproject.org/%2Fpublic_pubsub"


@pytest.fixture
def fedora_toml(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    """fedora-messaging's Fedora config with its [tls] files present (made here)."""
    ca, _ = self_signed_cert(tmp_path, "ca")
    cert, key = self_signed_cert(tmp_path, "fedora")
    files = {"cafile": ca, "certfile": cert, "keyfile": key}
    text = (
        SAMPLE.read_text()
        .replace("/etc/fedora-messaging/cacert.pem", str(ca))
        .replace("/etc/fedora-messaging/fedora-cert.pem", str(cert))
        .replace("/etc/fedora-messaging/fedora-key.pem", str(key))
    )
    path = tmp_path / "fedora.toml"
    path.write_text(text)
    return path, files


def assert_fedora_bus(bus: BusSettings, files: dict[str, Path]) -> None:
    url = urlsplit(bus.amqp_url)
    assert (url.scheme, url.hostname, url.path) == (
        "amqps",
        "rabbitmq.fedoraproject.org",
        "/%2Fpublic_pubsub",
    )
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    # The TLS files where aio-pika reads them, and the certificate as the login (SASL EXTERNAL).
    assert query == {**{k: str(v) for k, v in files.items()}, "auth": "external"}
    assert bus.client_properties == {
        "app": "Example Application",
        "app_url": "https://github.com/fedora-infra/fedora-messaging",
        "app_contacts_email": ["admin@fedoraproject.org"],
    }


def test_read_as_is(fedora_toml: tuple[Path, dict[str, Path]]) -> None:
    path, files = fedora_toml
    assert_fedora_bus(BusSettings(fedora_messaging_config=str(path)), files)


def test_converted_by_command(fedora_toml: tuple[Path, dict[str, Path]]) -> None:
    path, files = fedora_toml
    result = CliRunner().invoke(cli, ["config", "from-fedora-messaging", str(path)])
    assert result.exit_code == 0, result.output
    assert_fedora_bus(BusSettings(**tomllib.loads(result.output)["bus"]), files)


def test_missing_certificate_is_a_clear_error(tmp_path: Path) -> None:
    # The sample as shipped names /etc/fedora-messaging files this machine does not have.
    with pytest.raises(ValidationError, match=re.escape("/etc/fedora-messaging/cacert.pem")):
        BusSettings(fedora_messaging_config=str(SAMPLE))
    result = CliRunner().invoke(cli, ["config", "from-fedora-messaging", str(SAMPLE)])
    assert result.exit_code != 0
    assert "cacert.pem (cafile) does not exist" in result.output
    plain = tmp_path / "plain.toml"
    plain.write_text(SAMPLE.read_text().replace("amqps://", "amqp://"))
    with pytest.raises(ValidationError, match="not amqps://"):
        BusSettings(fedora_messaging_config=str(plain))
    with pytest.raises(ValidationError, match="cannot read it"):
        BusSettings(fedora_messaging_config=str(tmp_path / "absent.toml"))


async def test_connects_with_the_files_settings(amqp_url: str, tmp_path: Path) -> None:
    """A fedora-messaging file naming the test broker: fmn connects, publishes and reads, and
    the broker sees the file's client properties on fmn's connection."""
    path = tmp_path / "local.toml"
    app = f"fmn test {uuid.uuid4().hex[:8]}"
    path.write_text(f'amqp_url = "{amqp_url}"\n\n[client_properties]\napp = "{app}"\n')
    async with broker_from(path) as broker:
        await round_trip(broker)
        listed = await asyncio.to_thread(
            subprocess.run,
            ["rabbitmqctl", "-q", "list_connections", "client_properties", "--formatter", "json"],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert app in listed.stdout and "fmn consumer" in listed.stdout
        json.loads(listed.stdout)  # one answer, well formed

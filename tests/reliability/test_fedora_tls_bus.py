"""Fedora's bus connection: TLS with an x509 client certificate and SASL EXTERNAL (the
rabbitmq_auth_mechanism_ssl plugin), on a private RabbitMQ node this test starts on its own
ports and data folder, configured through a fedora-messaging TOML file. A client certificate
from another CA is refused."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bench.soak_services import PrivateRabbitMQ, free_port
from fmn.core.settings import BusSettings
from fmn.transport import make_broker
from fmn.transport.amqp import BrokerUnreachable
from tests.transport.fedora_bus import broker_from, round_trip

pytestmark = [
    pytest.mark.xdist_group("reliability"),
    pytest.mark.skipif(
        os.geteuid() != 0 and os.environ.get("CI") != "true",
        reason="needs root (runs RabbitMQ as its user)",
    ),
]

USER = "fmn-consumer"


class Authority:
    """A certificate authority for the test, writing PEM files into `directory`."""

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.cert = self._build(self.name, self.key.public_key(), ca=True, sans=[])
        self.cert_file = self._write(f"{name}-ca.pem", self.cert, None)

    def _build(
        self,
        subject: x509.Name,
        public_key: ec.EllipticCurvePublicKey,
        ca: bool,
        sans: list,
        age: dt.timedelta = dt.timedelta(0),
    ) -> x509.Certificate:
        now = dt.datetime.now(dt.UTC) - age
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return builder.sign(self.key, hashes.SHA256())

    def _write(
        self, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey | None
    ) -> Path:
        path = self.directory / name
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        if key is not None:
            path.with_suffix(".key").write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        path.chmod(0o644)
        return path

    def issue(
        self, common_name: str, server: bool = False, age: dt.timedelta = dt.timedelta(0)
    ) -> tuple[Path, Path]:
        """A key and a certificate valid for 30 days from `age` ago."""
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list = (
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            if server
            else []
        )
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        cert = self._build(subject, key.public_key(), ca=False, sans=sans, age=age)
        name = f"{self.name.rfc4514_string()}-{common_name}-{uuid.uuid4().hex[:6]}.pem"
        path = self._write(name, cert, key)
        path.with_suffix(".key").chmod(0o644)  # read by the rabbitmq user; a test key
        return path, path.with_suffix(".key")


class TLSNode(PrivateRabbitMQ):
    """A private node with a TLS listener that asks for client certificates."""

    def __init__(self, base: Path, ca: Authority) -> None:
        super().__init__(base, uuid.uuid4().hex[:8])
        self.tls_port = free_port()
        cert, key = ca.issue("localhost", server=True)
        conf = self.dir / "rabbitmq.conf"
        conf.write_text(
            conf.read_text() + f"listeners.ssl.default = 127.0.0.1:{self.tls_port}\n"
            f"ssl_options.cacertfile = {ca.cert_file}\n"
            f"ssl_options.certfile = {cert}\n"
            f"ssl_options.keyfile = {key}\n"
            "ssl_options.verify = verify_peer\n"
            "ssl_options.fail_if_no_peer_cert = true\n"
            "auth_mechanisms.1 = EXTERNAL\n"
            "auth_mechanisms.2 = PLAIN\n"
            "ssl_cert_login_from = common_name\n"
        )
        (self.dir / "enabled_plugins").write_text("[rabbitmq_auth_mechanism_ssl].\n")


@pytest.fixture(scope="module")
def tls_bus() -> Iterator[tuple[TLSNode, Authority, Path]]:
    base = Path(tempfile.mkdtemp(prefix="fmn-tls-"))
    base.chmod(0o755)
    pki = base / "pki"
    pki.mkdir()
    pki.chmod(0o755)
    ca = Authority(pki, "fedora-test")
    node = TLSNode(base, ca)
    try:
        node.start()
        node.ctl("add_user", USER, uuid.uuid4().hex)
        node.ctl("clear_password", USER)
        node.ctl("set_permissions", "-p", "/", USER, ".*", ".*", ".*")
        yield node, ca, pki
    finally:
        node.stop()
        shutil.rmtree(base, ignore_errors=True)


def fedora_messaging_toml(path: Path, node: TLSNode, ca: Path, cert: Path, key: Path) -> Path:
    path.write_text(
        f'amqp_url = "amqps://{USER}:@localhost:{node.tls_port}/%2F"\n\n'
        f'[tls]\nca_cert = "{ca}"\nkeyfile = "{key}"\ncertfile = "{cert}"\n\n'
        '[client_properties]\napp = "fmn"\n'
    )
    return path


async def test_client_certificate_login(tls_bus: tuple[TLSNode, Authority, Path]) -> None:
    node, ca, pki = tls_bus
    cert, key = ca.issue(USER)
    config = fedora_messaging_toml(pki / "good.toml", node, ca.cert_file, cert, key)
    async with broker_from(config) as broker:
        await round_trip(broker)


@pytest.mark.parametrize("wrong", ["another CA", "expired"])
async def test_wrong_certificate_is_refused(
    tls_bus: tuple[TLSNode, Authority, Path], caplog: pytest.LogCaptureFixture, wrong: str
) -> None:
    node, ca, pki = tls_bus
    if wrong == "expired":
        cert, key = ca.issue(USER, age=dt.timedelta(days=60))
    else:
        cert, key = Authority(pki, "rogue").issue(USER)
    config = fedora_messaging_toml(pki / "wrong.toml", node, ca.cert_file, cert, key)
    bus = BusSettings(fedora_messaging_config=str(config))
    broker = make_broker(bus.amqp_url, "fmn consumer", bus.client_properties)
    caplog.set_level(logging.ERROR)
    with pytest.raises(BrokerUnreachable, match="refused this client's certificate"):
        await broker.connect()
    await broker.close()
    [line] = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    # The alert itself, or (TLS 1.3: the broker checks after the handshake) a reset.
    assert line.startswith(
        f"cannot connect to amqps://{USER}:@localhost:{node.tls_port}/%2F: TLS: the broker "
        "refused this client's certificate ("
    ), line
    assert str(pki) not in line  # the URL's query, which names the key files, is left out

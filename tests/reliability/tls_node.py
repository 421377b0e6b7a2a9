"""Fedora's bus for the tests: a private RabbitMQ node (own ports and data folder, from
bench/soak_services.py) with a TLS listener that asks for client certificates and the
rabbitmq_auth_mechanism_ssl plugin (SASL EXTERNAL), the certificate authority the tests make
its certificates with, and fedora-messaging TOML files pointing at it. The node has Fedora's
bus vhost, /pubsub, and fmn's own, /fmn; the user is the client certificate's common name."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import uuid
from pathlib import Path
from urllib.parse import urlencode

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bench.soak_services import PrivateRabbitMQ, free_port

NEEDS_ROOT = pytest.mark.skipif(
    os.geteuid() != 0 and os.environ.get("CI") != "true",
    reason="needs root (runs RabbitMQ as its user)",
)

USER = "fmn-consumer"
BUS_VHOST = "/pubsub"  # Fedora's
SEND_VHOST = "/fmn"


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

    def amqps_url(self, vhost: str, user: str = USER) -> str:
        return f"amqps://{user}:@localhost:{self.tls_port}/{vhost.replace('/', '%2F')}"

    def set_up(self) -> None:
        """The vhosts and the user, who logs in with a certificate only (no password)."""
        self.ctl("add_user", USER, uuid.uuid4().hex)
        self.ctl("clear_password", USER)
        for vhost in (BUS_VHOST, SEND_VHOST):
            self.ctl("add_vhost", vhost)
            self.ctl("set_permissions", "-p", vhost, USER, ".*", ".*", ".*")


def fedora_messaging_toml(path: Path, node: TLSNode, ca: Path, cert: Path, key: Path) -> Path:
    path.write_text(
        f'amqp_url = "{node.amqps_url(BUS_VHOST)}"\n\n'
        f'[tls]\nca_cert = "{ca}"\nkeyfile = "{key}"\ncertfile = "{cert}"\n\n'
        '[client_properties]\napp = "fmn"\n'
    )
    return path


def send_queue_url(node: TLSNode, ca: Path, cert: Path, key: Path) -> str:
    """fmn's own vhost on the same node, with the same certificate, as
    deploy/fmn.production.toml has it: TLS files and SASL EXTERNAL in the URL's query."""
    files = {"auth": "external", "cafile": ca, "certfile": cert, "keyfile": key}
    return f"{node.amqps_url(SEND_VHOST)}?{urlencode(files)}"


TLSBus = tuple[TLSNode, Authority, Path]  # the node, its CA, and the folder of the PEM files

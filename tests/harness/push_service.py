"""A Web Push service stand-in (RFC 8030) for the tests: a small HTTP server in a thread that
takes pushes at /push/<name>, checks the VAPID authorization (RFC 8292: the JWT's ES256
signature against the key in the header, which must be the application server's, its audience
and expiry) and decrypts the payload (RFC 8291, aes128gcm) with http-ece using the
subscription's private keys, which the test made as a browser would. It answers as a push
service does: 201, or what the test asked for a subscription (404/410 gone, 500)."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from tests.harness.ports import free_port


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class BrowserSubscription:
    """What a browser keeps for one subscription: its key pair and auth secret."""

    name: str
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def p256dh(self) -> str:
        return b64url(
            self.private_key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )


@dataclass
class Push:
    subscription: str
    payload: Any  # the decrypted JSON
    ttl: str | None
    vapid_public_key: str


class VapidError(Exception):
    pass


def check_vapid(header: str, audience: str, expected_key: str) -> str:
    """The public key of a valid `vapid t=<JWT>, k=<key>` authorization; VapidError if not."""
    scheme, _, params = header.partition(" ")
    if scheme.lower() != "vapid":
        raise VapidError(f"not a vapid authorization: {header[:40]!r}")
    values = dict(part.strip().split("=", 1) for part in params.split(",") if "=" in part)
    token, key = values.get("t", ""), values.get("k", "")
    if key != expected_key:
        raise VapidError("not the application server's key")
    head_b64, claims_b64, signature_b64 = token.split(".")
    head = json.loads(unb64url(head_b64))
    if head.get("alg") != "ES256":
        raise VapidError(f"alg {head.get('alg')!r}")
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(key))
    raw = unb64url(signature_b64)
    if len(raw) != 64:
        raise VapidError("signature is not 64 bytes")
    signature = encode_dss_signature(
        int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    )
    try:
        public.verify(signature, f"{head_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise VapidError("bad JWT signature") from None
    claims = json.loads(unb64url(claims_b64))
    if claims.get("aud") != audience:
        raise VapidError(f"aud {claims.get('aud')!r}, not {audience!r}")
    if not time.time() < claims.get("exp", 0) <= time.time() + 24 * 3600:
        raise VapidError("exp not within 24 hours")
    if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
        raise VapidError("no sub")
    return key


class PushService:
    def __init__(self, vapid_public_key: str) -> None:
        self.vapid_public_key = vapid_public_key
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.subscriptions: dict[str, BrowserSubscription] = {}
        self.answers: dict[str, int] = {}  # subscription -> status to answer instead of 201
        self.received: list[Push] = []
        self.refused: list[str] = []  # why requests were refused
        self._server: ThreadingHTTPServer | None = None

    def subscribe(self, name: str) -> BrowserSubscription:
        found = self.subscriptions[name] = BrowserSubscription(name)
        return found

    def browser_json(self, name: str) -> dict[str, Any]:
        """What PushSubscription.toJSON() gives the web app."""
        sub = self.subscriptions[name]
        return {
            "endpoint": f"{self.origin}/push/{name}",
            "expirationTime": None,
            "keys": {"p256dh": sub.p256dh, "auth": b64url(sub.auth)},
        }

    def pushes(self, name: str) -> list[Push]:
        return [p for p in self.received if p.subscription == name]

    def start(self) -> None:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                name = self.path.removeprefix("/push/")
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, answer = service._take(name, self.headers, body)
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _take(self, name: str, headers: Any, body: bytes) -> tuple[int, bytes]:
        sub = self.subscriptions.get(name)
        if sub is None:
            return 404, b"no such subscription"
        if name in self.answers:
            return self.answers[name], b"as the test asked"
        try:
            key = check_vapid(headers.get("Authorization", ""), self.origin, self.vapid_public_key)
        except (VapidError, ValueError) as exc:
            self.refused.append(str(exc))
            return 401, str(exc).encode()
        if headers.get("Content-Encoding") != "aes128gcm":
            self.refused.append(f"content encoding {headers.get('Content-Encoding')!r}")
            return 400, b"aes128gcm only"
        try:
            plain = http_ece.decrypt(
                body, private_key=sub.private_key, auth_secret=sub.auth, version="aes128gcm"
            )
        except Exception as exc:
            self.refused.append(f"cannot decrypt: {exc!r}")
            return 400, b"cannot decrypt"
        self.received.append(Push(name, json.loads(plain), headers.get("TTL"), key))
        return 201, b""

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

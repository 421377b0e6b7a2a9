"""The application server's VAPID key pair (RFC 8292): read from the settings (base64url of the
32-byte private number, or PEM), or made once in `fmn run`'s data folder. No default key."""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from fmn.core.secrets import data_dir_secret, vapid_private_key
from fmn.core.settings import ConfigError

KEY_FILE_NAME = "vapid_private_key"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_key(setting: str) -> Vapid02:
    """The key pair of `web.vapid_private_key`; ConfigError naming the setting if unusable
    (the settings refuse such a key already when they are read)."""
    try:
        key = vapid_private_key(setting)
    except ValueError as exc:
        raise ConfigError(f"web.vapid_private_key is not a P-256 private key ({exc})") from None
    return Vapid02(key)


def public_key(vapid: Vapid02) -> str:
    """The public key as browsers take it (applicationServerKey): the uncompressed point."""
    point = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64url(point)


def new_private_key() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return b64url(key.private_numbers().private_value.to_bytes(32, "big"))


def _usable(key: str) -> bool:
    try:
        load_key(key)
    except ConfigError:
        return False
    return True


def data_dir_key(data_dir: Path) -> str:
    """`fmn run`'s key: made at random the first time, then read from the data folder."""
    return data_dir_secret(data_dir / KEY_FILE_NAME, _usable, new_private_key)

"""The keys that sign unsubscribe links: none by default, and none that anyone could guess.

`fmn api`, `fmn consumer` and `fmn sender` refuse to start, with one line naming the setting,
when the keys are unset, shorter than MIN_KEY_BYTES or one of the placeholders this project
ships in its samples (tests/deploy checks that every shipped placeholder is listed here).
`fmn run` makes a random key once per data folder and keeps it there.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fmn.core.settings import APISettings, ConfigError

MIN_KEY_BYTES = 32
KEY_FILE_NAME = "secret_key"
# Every value the project's samples, docs and deploy files give a signing key; anything
# saying "change me" is refused as well, whatever its case.
PLACEHOLDERS = frozenset(
    {
        "change-me",
        "change-me-to-a-long-random-string",
        "compose-only-not-a-secret",
        "test-secret",
    }
)


def configured_keys(api: APISettings) -> tuple[str, list[str]]:
    """The setting's name and its keys: secret_keys, else the former single secret_key."""
    if api.secret_keys:
        return "api.secret_keys", list(api.secret_keys)
    if api.secret_key is not None:
        return "api.secret_key", [api.secret_key]
    return "api.secret_keys", []


def _weakness(key: str) -> str | None:
    folded = key.strip().lower()
    if folded in PLACEHOLDERS or "change-me" in folded or "changeme" in folded:
        return "is a placeholder from the samples"
    if len(key.encode()) < MIN_KEY_BYTES:
        return f"is shorter than {MIN_KEY_BYTES} bytes"
    return None


def check_signing_keys(api: APISettings) -> list[str]:
    """The signing keys (the first signs); ConfigError naming the setting when unusable."""
    name, keys = configured_keys(api)
    if not keys:
        raise ConfigError(
            f"{name} is not set: give it a random key of at least {MIN_KEY_BYTES} bytes "
            "(e.g. `python3 -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
        )
    for position, key in enumerate(keys):
        problem = _weakness(key)
        if problem is not None:
            where = name if len(keys) == 1 else f"{name}[{position}]"
            raise ConfigError(
                f"{where} {problem}: set a random key of at least {MIN_KEY_BYTES} bytes"
            )
    return keys


def data_dir_key(data_dir: Path) -> str:
    """`fmn run`'s key: made at random the first time, then read from the data folder."""
    return data_dir_secret(
        data_dir / KEY_FILE_NAME,
        lambda key: _weakness(key) is None,
        lambda: secrets.token_urlsafe(48),
    )


def data_dir_secret(path: Path, usable: Callable[[str], bool], make: Callable[[], str]) -> str:
    """A secret of `fmn run` kept in its data folder: read when usable, made otherwise."""
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        value = ""
    if value and usable(value):
        return value
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    # Readable by its owner only, created that way (no moment with wider permissions).
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")
    return value


def vapid_private_key(text: str) -> ec.EllipticCurvePrivateKey:
    """A VAPID (Web Push) private key from base64url of its 32-byte private number, or PEM;
    ValueError saying why it is none."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(text.encode(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("not an elliptic-curve key")
    else:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (ValueError, binascii.Error):
            raise ValueError("not base64url") from None
        if len(raw) != 32:
            raise ValueError(f"{len(raw)} bytes, not 32")
        key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    if not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("not a P-256 key")
    return key

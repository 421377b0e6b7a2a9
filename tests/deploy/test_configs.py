"""Every sample configuration under deploy/ loads into the settings class, and every FMN_
variable a deployment file sets names a real key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import DEPLOY
from tests.deploy.settings_env import load, setting_exists

TOML_FILES = sorted([*DEPLOY.glob("*.toml"), *DEPLOY.glob("*.toml.sample")])


def env_file(path: Path) -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )
    return {key.strip(): value.strip() for key, value in pairs}


def configmap_toml(tmp_path: Path) -> Path:
    doc = yaml.safe_load((DEPLOY / "kubernetes" / "configmap.yaml").read_text())
    path = tmp_path / "fmn.toml"
    path.write_text(doc["data"]["fmn.toml"])
    return path


def test_there_are_samples() -> None:
    names = {p.name for p in TOML_FILES}
    assert {"fmn.toml.sample", "fmn.production.toml"} <= names


@pytest.mark.parametrize("path", TOML_FILES, ids=lambda p: p.name)
def test_sample_loads(path: Path) -> None:
    load({}, config=path)


def test_production_with_its_secrets() -> None:
    secrets = env_file(DEPLOY / "systemd" / "secrets.env.sample")
    settings = load(secrets, config=DEPLOY / "fmn.production.toml")
    # The environment wins, key by key: the rest of each section still comes from the file.
    assert settings.database.url == secrets["FMN_DATABASE__URL"]
    assert settings.database.pool_size == 20
    assert settings.senders.irc.sasl_password == secrets["FMN_SENDERS__IRC__SASL_PASSWORD"]
    assert settings.senders.irc.sasl_username == "fedora-notif"
    assert settings.bus.topic_prefix == "org.fedoraproject.prod"
    assert settings.api.secret_key != "change-me"


def test_kubernetes_configmap_loads(tmp_path: Path) -> None:
    settings = load(
        {"FMN_DATABASE__URL": "postgresql+asyncpg://x@db/fmn"}, configmap_toml(tmp_path)
    )
    assert settings.api.host == "0.0.0.0"
    assert settings.database.pool_size == 10


def test_secret_variables_name_real_keys() -> None:
    for variable in env_file(DEPLOY / "systemd" / "secrets.env.sample"):
        assert setting_exists(variable), variable


def test_setting_exists_refuses_what_is_not_a_key() -> None:
    assert setting_exists("FMN_SENDERS__EMAIL__SMTP_HOST")
    assert setting_exists("FMN_PUBLIC_URL")
    for wrong in ("FMN_SENDERS__EMAIL__SMTP_HOSTS", "FMN_SENDERS__EMAIL", "FMN_NOPE", "FMN_API"):
        assert not setting_exists(wrong), wrong

"""Configuration: TOML file plus environment, refused with one clear line when wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from fmn.core.config_cli import sample_config
from fmn.core.settings import ConfigError, Settings, load_settings
from fmn.inbox.vapid import new_private_key

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "deploy" / "fmn.toml.sample"


def run_fmn(
    *args: str, config: Path | None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FMN_")}
    if config is not None:
        full_env["FMN_CONFIG"] = str(config)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "fmn", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(autouse=True)
def no_fmn_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("FMN_"):
            monkeypatch.delenv(key)


def test_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "fmn.toml"
    path.write_text(
        '[database]\nurl = "postgresql+asyncpg://db/fmn"\n[oidc]\nadmin_groups = ["infra"]\n'
    )
    monkeypatch.setenv("FMN_CONFIG", str(path))
    monkeypatch.setenv("FMN_API__PORT", "9999")
    settings = load_settings()
    assert settings.database.url == "postgresql+asyncpg://db/fmn"
    assert settings.oidc.admin_groups == ["infra"]
    assert settings.api.port == 9999
    # The environment wins over the file.
    monkeypatch.setenv("FMN_DATABASE__URL", "sqlite+aiosqlite:///x.db")
    assert load_settings().database.url == "sqlite+aiosqlite:///x.db"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[database]\nurll = 'x'\n", "unknown key 'database.urll'"),
        ("[nope]\nx = 1\n", "unknown key 'nope'"),
        ("[api]\nport = 'eighty'\n", "'api.port': Input should be a valid integer"),
        ("[database\n", "invalid configuration file"),
    ],
)
def test_bad_configuration_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, message: str
) -> None:
    path = tmp_path / "fmn.toml"
    path.write_text(content)
    monkeypatch.setenv("FMN_CONFIG", str(path))
    with pytest.raises(ConfigError, match="") as info:
        load_settings()
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_configuration_stops_the_command_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "fmn.toml"
    path.write_text("[database]\nurll = 'x'\n")
    result = run_fmn("db", "upgrade", config=path)
    assert result.returncode == 1
    assert result.stderr.strip() == "Error: invalid configuration: unknown key 'database.urll'"
    missing = run_fmn("config", "check", config=tmp_path / "absent.toml")
    assert missing.returncode == 1
    assert "no such file" in missing.stderr


def test_unreachable_database_is_one_clear_error(tmp_path: Path) -> None:
    result = run_fmn(
        "db",
        "upgrade",
        config=None,
        env={"FMN_DATABASE__URL": "postgresql+asyncpg://postgres@127.0.0.1:1/fmn"},
    )
    assert result.returncode == 1
    assert "is unreachable" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_sample_documents_every_key_with_its_default() -> None:
    assert SAMPLE.read_text() == sample_config(), (
        "deploy/fmn.toml.sample is stale: run `fmn config sample > deploy/fmn.toml.sample`"
    )


def test_the_sample_loads_into_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMN_CONFIG", str(SAMPLE))
    assert load_settings() == Settings.model_construct()


def test_a_vapid_key_that_is_none_is_refused_and_empty_means_unset() -> None:
    for bad in (
        "CHANGE-ME",
        "AAAA",
        "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----",
    ):
        with pytest.raises(ConfigError, match=r"web\.vapid_private_key"):
            load_settings(web={"vapid_private_key": bad})
    assert load_settings(web={"vapid_private_key": ""}).web.vapid_private_key is None
    key = new_private_key()
    assert load_settings(web={"vapid_private_key": key}).web.vapid_private_key == key


@pytest.mark.parametrize(
    ("key", "senders"),
    [
        ("senders.digest_threshold", lambda n: {"digest_threshold": n}),
        (
            "senders.irc.channel_digest_threshold",
            lambda n: {"irc": {"channel_digest_threshold": n}},
        ),
    ],
)
def test_a_digest_threshold_below_1_is_refused(
    key: str, senders: Callable[[int], dict[str, object]]
) -> None:
    """0 never meant "always digest": a destination with nothing waiting sends at once."""
    for value in (0, -1):
        with pytest.raises(ConfigError) as info:
            load_settings(senders=senders(value))
        assert f"'{key}': Input should be greater than or equal to 1" in str(info.value)
    assert load_settings(senders=senders(1)) != load_settings()

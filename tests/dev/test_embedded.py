"""Which parts `fmn run` replaces by stand-ins: those left at their defaults, and only those."""

from __future__ import annotations

from pathlib import Path

import pytest

from fmn.core.settings import Settings
from fmn.dev.embedded import SAMPLE_DIRECTORY, plan
from fmn.inbox.vapid import load_key, new_private_key


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_on_defaults_everything_is_embedded(in_tmp: Path) -> None:
    run = plan(Settings(), port=18123, builtin_login=True)
    assert run.url == "http://127.0.0.1:18123"
    assert set(run.parts) == {
        "database",
        "directory",
        "oidc",
        "email",
        "irc",
        "matrix",
        "bus",
        "cache",
    }
    settings = run.settings
    assert settings.database.url == f"sqlite+aiosqlite:///{in_tmp / 'var' / 'fmn.sqlite'}"
    assert settings.directory.local_file == str(SAMPLE_DIRECTORY)
    assert settings.oidc.provider_url == "http://127.0.0.1:18123/idp"
    assert settings.oidc.client_secret
    assert settings.public_url == run.url
    assert {run.url, "http://localhost:18123"} <= set(settings.api.cors_origins)
    assert [u.username for u in run.users] == ["alice", "bob", "carol", "dave"]
    assert "sysadmin-main" in run.users[0].groups

    run.with_smtp_sink("127.0.0.1", 2525)
    assert (run.settings.senders.email.smtp_host, run.settings.senders.email.smtp_port) == (
        "127.0.0.1",
        2525,
    )


def test_the_builtin_login_only_when_asked_for() -> None:
    """Never inferred from oidc.provider_url being left at its default (Fedora's)."""
    run = plan(Settings(), port=18123)
    assert "oidc" not in run.parts
    assert run.settings.oidc == Settings().oidc
    configured = Settings(oidc={"provider_url": "https://id.example.org"})
    assert plan(configured, builtin_login=True).settings.oidc.provider_url.endswith("/idp")


def test_configured_parts_are_used_as_configured() -> None:
    configured = Settings(
        public_url="https://fmn.example.org",
        database={"url": "postgresql+asyncpg://db.example.org/fmn"},
        bus={"amqp_url": "amqp://bus.example.org"},
        send_queue={"amqp_url": "amqp://bus.example.org"},
        cache={"url": "redis://cache.example.org"},
        directory={"fasjson_url": "https://fasjson.example.org"},
        oidc={"provider_url": "https://id.example.org"},
        senders={
            "email": {"smtp_host": "smtp.example.org"},
            "irc": {"host": "irc.example.org"},
            "matrix": {"access_token": "t0ken"},
        },
    )
    run = plan(configured)
    assert run.parts == []
    assert run.url == "https://fmn.example.org"
    for section in ("database", "bus", "cache", "directory", "oidc", "senders"):
        assert getattr(run.settings, section) == getattr(configured, section)


def test_the_run_makes_its_vapid_key_once_and_keeps_a_configured_one(in_tmp: Path) -> None:
    first = plan(Settings(), port=18123).settings.web.vapid_private_key
    assert first and load_key(first)
    key_file = in_tmp / "var" / "vapid_private_key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert plan(Settings(), port=18123).settings.web.vapid_private_key == first
    configured = new_private_key()
    run = plan(Settings(web={"vapid_private_key": configured}), port=18123)
    assert run.settings.web.vapid_private_key == configured

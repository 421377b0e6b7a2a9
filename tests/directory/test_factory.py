"""Building the directory from the settings; `fmn directory lookup`."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from fmn.cli import cli
from fmn.core import settings as settings_module
from fmn.core.settings import Settings
from fmn.directory import (
    CachedDirectory,
    DirectoryChange,
    close_directory,
    invalidate_on_message,
    make_directory,
)
from fmn.directory.fasjson import default_fasjson_auth
from fmn.directory.local import LocalDirectory
from tests.directory.conftest import SAMPLE
from tests.harness import directory_server as directory_harness
from tests.harness.directory_server import RunningServer
from tests.harness.ports import free_port


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    settings_module.get_settings.cache_clear()
    yield
    settings_module.get_settings.cache_clear()


async def test_a_local_file_alone_is_read_in_memory() -> None:
    directory = make_directory(Settings(directory={"local_file": str(SAMPLE)}))
    assert isinstance(directory, LocalDirectory)
    assert await directory.get_project_users("rpms/firefox") == ["alice", "bob"]
    # Nothing cached, but the caller still learns what a message changes.
    body = {"msg": {"agent": "a", "user": "alice"}}
    change = await invalidate_on_message(directory, "fas.user.update", body)
    assert change == DirectoryChange(users=frozenset({"alice"}))


async def test_urls_select_the_cached_http_clients(
    directory_server: RunningServer, redis_url: str
) -> None:
    url = directory_server.url
    settings = Settings(
        directory={"local_file": str(SAMPLE), "fasjson_url": url, "distgit_url": url},
        cache={"url": redis_url, "directory_ttl": 30},
    )
    directory = make_directory(settings)
    try:
        assert isinstance(directory, CachedDirectory)
        assert directory.ttl == 30
        assert await directory.get_group_members("packagers") == ["alice", "bob", "carol"]
        assert directory_server.stats()["requests"] == 2  # members, sponsors
    finally:
        await close_directory(directory)


def test_kerberos_only_where_it_can_be() -> None:
    assert default_fasjson_auth("http://127.0.0.1:8081") is None
    try:
        import httpx_gssapi  # noqa: F401
    except ImportError:
        assert default_fasjson_auth("https://fasjson.fedoraproject.org") is None


def test_cli_lookup(
    directory_server: RunningServer, fresh_settings: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FMN_DIRECTORY__FASJSON_URL", directory_server.url)
    monkeypatch.setenv("FMN_DIRECTORY__DISTGIT_URL", directory_server.url)
    result = CliRunner().invoke(cli, ["directory", "lookup", "get_user_projects", "alice"])
    assert result.exit_code == 0, result.output
    assert '"rpms/kernel"' in result.output


def test_cli_lookup_says_when_the_directory_is_down(
    fresh_settings: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("FMN_DIRECTORY__FASJSON_URL", url)
    monkeypatch.setenv("FMN_DIRECTORY__DISTGIT_URL", url)
    monkeypatch.setenv("FMN_DIRECTORY__RETRIES", "0")
    result = CliRunner().invoke(cli, ["directory", "lookup", "get_user", "alice"])
    assert result.exit_code == 1
    assert "directory unavailable" in result.output


def test_the_test_server_refuses_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "directory.json"
    bad.write_text('{"people": {}}')
    result = subprocess.run(
        directory_harness.command(bad, free_port()),
        cwd=directory_harness.ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "people" in result.stderr

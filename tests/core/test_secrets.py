"""No usable default signing key: the processes refuse to start without a real one, whatever
placeholder the project's samples carry; `fmn run` makes and keeps its own."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from fmn.core.secrets import check_signing_keys, data_dir_key
from fmn.core.settings import APISettings, ConfigError, Settings
from fmn.dev.embedded import plan

ROOT = Path(__file__).resolve().parents[2]
GOOD = "a-random-enough-key-for-these-tests-0123456789"
# Where the project's files give the signing key a value: env files, the compose default,
# TOML, the Kubernetes Secret's key, docs' examples.
KEY_VALUES = (
    re.compile(r"FMN_API__SECRET_KEYS?=([^\s`'\"]+)"),
    re.compile(r"\$\{FMN_API__SECRET_KEYS?:-([^}]+)\}"),
    re.compile(r"^\s*secret_keys?\s*=\s*\"([^\"]+)\"", re.M),
    re.compile(r"api-secret-key:\s*(\S+)"),
)


def shipped_keys() -> set[tuple[str, str]]:
    """(value, file) of every signing key the project's files show."""
    files = [*(ROOT / "deploy").rglob("*"), *(ROOT / "docs").rglob("*.md"), ROOT / "README.md"]
    return {
        (value, str(path.relative_to(ROOT)))
        for path in files
        if path.is_file()
        for pattern in KEY_VALUES
        for value in pattern.findall(path.read_text(errors="replace"))
    }


def fmn(*args: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "fmn.toml"
    config.touch()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FMN_")}
    return subprocess.run(
        [sys.executable, "-m", "fmn", *args],
        env={**clean, "FMN_CONFIG": str(config), **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("command", [["api"], ["consumer"], ["sender", "email"]])
def test_the_processes_refuse_the_shipped_defaults(command: list[str], tmp_path: Path) -> None:
    unset = fmn(*command, env={}, tmp_path=tmp_path)
    assert unset.returncode != 0
    [line] = unset.stderr.strip().splitlines()
    assert "api.secret_keys is not set" in line
    sample = {"FMN_API__SECRET_KEY": "CHANGE-ME-TO-A-LONG-RANDOM-STRING"}
    placeholder = fmn(*command, env=sample, tmp_path=tmp_path)
    assert placeholder.returncode != 0
    assert "api.secret_key is a placeholder" in placeholder.stderr


def test_every_placeholder_the_project_ships_is_refused() -> None:
    found = shipped_keys()
    # The systemd and Kubernetes samples at least.
    assert len({path for _, path in found}) >= 2, found
    for value, path in sorted(found):
        with pytest.raises(ConfigError, match=r"api\.secret_key"):
            check_signing_keys(APISettings(secret_key=value))
            pytest.fail(f"{path}: {value!r} is accepted")


def test_short_keys_are_refused_and_each_key_of_a_list_is_checked() -> None:
    with pytest.raises(ConfigError, match="shorter than 32 bytes"):
        check_signing_keys(APISettings(secret_keys=["x" * 31]))
    with pytest.raises(ConfigError, match=r"api.secret_keys\[1\] is shorter"):
        check_signing_keys(APISettings(secret_keys=[GOOD, "short"]))
    assert check_signing_keys(APISettings(secret_keys=[GOOD, GOOD + "-old"])) == [
        GOOD,
        GOOD + "-old",
    ]
    # The former single key still works.
    assert check_signing_keys(APISettings(secret_key=GOOD)) == [GOOD]


def test_fmn_run_makes_one_key_per_data_folder_and_keeps_it(tmp_path: Path) -> None:
    def key(folder: str) -> list[str]:
        settings = Settings(dev={"data_dir": str(tmp_path / folder)})
        return plan(settings).settings.api.secret_keys

    first = key("a")
    assert len(first) == 1 and len(first[0]) >= 32
    assert key("a") == first
    assert key("b") != first
    assert stat.S_IMODE((tmp_path / "a" / "secret_key").stat().st_mode) == 0o600
    assert data_dir_key(tmp_path / "a") == first[0]
    # A key that is set is used, and checked.
    set_one = Settings(dev={"data_dir": str(tmp_path / "c")}, api={"secret_keys": [GOOD]})
    assert plan(set_one).settings.api.secret_keys == [GOOD]
    with pytest.raises(ConfigError, match=r"api\.secret_key is a placeholder"):
        plan(Settings(dev={"data_dir": str(tmp_path / "d")}, api={"secret_key": "change-me"}))

"""scripts/ensure-prerequisites, which `make test` runs first: its decisions, checked without
changing the machine (shared with others): programs hidden by an empty search path, services by
a network namespace with nothing listening, root by running it as `nobody`; and shellcheck."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "ensure-prerequisites"
SHELLCHECK = Path(sys.executable).with_name("shellcheck")
NO_PROGRAMS = {"FMN_PREREQUISITES_PATH": "/nonexistent"}
PROGRAM_PACKAGES = "inspircd atheme-services chromium systemd"


def script(
    *args: str, prefix: tuple[str, ...] = (), **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, str(SCRIPT), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


# Switching user and network namespace needs root: skipped only outside CI, as a user.
as_root = pytest.mark.skipif(
    os.geteuid() != 0 and os.environ.get("CI") != "true", reason="needs root"
)


def test_shellcheck() -> None:
    result = subprocess.run(
        [str(SHELLCHECK), str(SCRIPT), str(ROOT / ".ci" / "run")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_make_test_runs_it_first_and_ci_runs_only_make_test() -> None:
    # --no-print-directory: under `make test` itself this make is nested and would say so first.
    dry = subprocess.run(
        ["make", "-n", "--no-print-directory", "test"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert dry.stdout.splitlines()[0] == "scripts/ensure-prerequisites"
    commands = [
        line
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line and not line.startswith(("#", "set ", "cd ", "export "))
    ]
    assert commands == ["exec make test"]


def test_everything_there_passes() -> None:
    # The test run itself needs them all, so here they are.
    result = script()
    assert result.returncode == 0, result.stderr
    assert "all there" in result.stdout


def test_missing_programs_are_installed_as_root() -> None:
    result = script("--dry-run", **NO_PROGRAMS)
    assert result.returncode == 0, result.stderr
    assert f"would install {PROGRAM_PACKAGES}" in result.stdout
    for program in ("inspircd", "atheme-services", "chromium", "systemd-analyze"):
        assert f"missing {program} " in result.stderr


@as_root
def test_without_root_it_fails_with_the_command_to_run() -> None:
    result = script(prefix=("runuser", "-u", "nobody", "--"), **NO_PROGRAMS)
    assert result.returncode == 1
    assert f"  sudo {SCRIPT}\n" in result.stderr
    assert f"apt-get install -y {PROGRAM_PACKAGES}" in result.stderr
    assert "missing chromium (the web app's browser tests)" in result.stderr


@as_root
def test_services_that_do_not_answer_are_started() -> None:
    assert shutil.which("unshare")
    result = script("--dry-run", prefix=("unshare", "--net", "--"))
    assert result.returncode == 0, result.stderr
    assert "would start PostgreSQL Redis RabbitMQ" in result.stdout
    assert "would install" not in result.stdout  # their programs are there
    assert "missing Redis (nothing answers on 127.0.0.1:6379)" in result.stderr


@as_root
def test_a_missing_service_program_is_installed_then_started() -> None:
    result = script("--dry-run", prefix=("unshare", "--net", "--"), **NO_PROGRAMS)
    assert result.returncode == 0, result.stderr
    assert (
        f"would install postgresql redis-server rabbitmq-server {PROGRAM_PACKAGES}" in result.stdout
    )
    assert "would start PostgreSQL Redis RabbitMQ" in result.stdout


def test_an_unknown_argument_is_refused() -> None:
    result = script("--yes")
    assert result.returncode == 2
    assert "usage:" in result.stderr

"""deploy/systemd/: `systemd-analyze verify` on every unit (with the install prefix pointed at
this checkout's `fmn`, since verify checks that the command exists), and every ExecStart is a
real `fmn` invocation."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fmn.sendqueue.workitem import PROTOCOLS
from tests.deploy.commands import parse_fmn
from tests.deploy.conftest import DEPLOY

UNITS = DEPLOY / "systemd"
INSTALLED_FMN = "/opt/fmn/venv/bin/fmn"
LOCAL_FMN = Path(sys.executable).parent / "fmn"


def unit(name: str) -> configparser.ConfigParser:
    # strict=False: systemd allows a key more than once (Wants=, EnvironmentFile=).
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNITS / name)
    return parser


def instances() -> list[str]:
    """Every unit the target starts, as instances (fmn-sender@email.service, ...)."""
    return [
        word
        for line in (UNITS / "fmn.target").read_text().splitlines()
        if line.startswith("Wants=")
        for word in line.removeprefix("Wants=").split()
    ]


def template_of(instance: str) -> str:
    prefix, _, rest = instance.partition("@")
    return f"{prefix}@.service" if rest else instance


def test_the_target_starts_every_process() -> None:
    wanted = instances()
    assert {template_of(i) for i in wanted} == {p.name for p in UNITS.glob("*.service")}
    assert {i for i in wanted if i.startswith("fmn-sender@")} == {
        f"fmn-sender@{p}.service" for p in PROTOCOLS
    }
    assert sum(i.startswith("fmn-consumer@") for i in wanted) >= 2


@pytest.mark.parametrize("instance", instances())
def test_execstart_is_a_real_command(instance: str) -> None:
    exec_start = unit(template_of(instance))["Service"]["ExecStart"]
    name = instance.partition("@")[2].removesuffix(".service")
    argv = shlex.split(exec_start.replace("%i", name))
    assert argv[0] == INSTALLED_FMN
    parse_fmn(argv[1:])


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    # Never a skip: `make test` installs it (scripts/ensure-prerequisites).
    assert shutil.which("systemd-analyze"), "no systemd-analyze: run scripts/ensure-prerequisites"
    assert LOCAL_FMN.exists()
    for path in UNITS.iterdir():
        if path.suffix in (".service", ".target"):
            text = path.read_text().replace(INSTALLED_FMN, str(LOCAL_FMN))
            (tmp_path / path.name).write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", "fmn.target", *instances()],
        cwd=tmp_path,
        env={"SYSTEMD_UNIT_PATH": f"{tmp_path}:", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Unknown keys and bad values are only warnings for systemd: any output is a failure here.
    assert result.returncode == 0 and not result.stdout + result.stderr, result.stderr

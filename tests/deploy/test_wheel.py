"""A plain install of the wheel (no checkout beside it) runs: the wheel is built, installed into a
fresh virtual environment without the development extras, and from an empty folder `fmn db
upgrade` migrates a database and `fmn run` starts, answers its health check and logs a user in
through the built-in provider's form (python-multipart)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.deploy.conftest import ROOT
from tests.dev.running import log_in, start

UV = Path(sys.executable).with_name("uv")
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("wheel")]


def outside_env() -> dict[str, str]:
    """The environment without what would lead to the checkout: no PYTHONPATH, no active venv."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def uv(*args: str, cwd: Path = ROOT) -> str:
    result = subprocess.run(
        [str(UV), *args], cwd=cwd, env=outside_env(), capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv with the wheel built from the sdist (as `pip install .` builds it)."""
    dist = tmp_path_factory.mktemp("dist")
    uv("build", "-q", "--out-dir", str(dist), str(ROOT))
    (wheel,) = dist.glob("fmn-*.whl")
    venv = tmp_path_factory.mktemp("venv")
    uv("venv", "-q", "--python", sys.executable, str(venv))
    python = venv / "bin" / "python"
    constraints = ROOT / "requirements" / "constraints.txt"
    uv("pip", "install", "-q", "--python", str(python), "-c", str(constraints), str(wheel))
    yield venv


def installed(venv: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "fmn"), *args],
        cwd=tmp,
        env={**outside_env(), "FMN_CONFIG": str(tmp / "fmn.toml")},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_installed_package_is_not_the_checkout(venv: Path, tmp_path: Path) -> None:
    found = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import fmn; print(fmn.__file__)"],
        cwd=tmp_path,
        env=outside_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert Path(found.strip()).is_relative_to(venv), found


def test_db_upgrade_then_run_from_an_empty_folder(venv: Path, tmp_path: Path) -> None:
    (tmp_path / "fmn.toml").write_text("")
    upgraded = installed(venv, tmp_path, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    assert "database at revision head" in upgraded.stdout
    assert (tmp_path / "fmn.sqlite").stat().st_size > 0

    running = start(tmp_path, venv / "bin" / "fmn", FMN_DEV__FEED_INTERVAL="0")
    try:
        # No checkout to build the web app in: the banner says how to serve one.
        assert "set api.frontend_dir (FMN_API__FRONTEND_DIR)" in running.stdout.read_text()
        with httpx.Client(base_url=running.url, timeout=10) as http:
            assert http.get("/api/v1/healthz/live").status_code == 200
            tokens = log_in(http, "carol")
            me = http.get(
                "/api/v1/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
            )
            assert me.status_code == 200, me.text
        assert running.interrupt() == 0, running.output()
    finally:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait()

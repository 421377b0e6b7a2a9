"""The product stands apart from the test suite: importing every module of fmn, in a fresh
interpreter, imports nothing from tests/ (its stand-ins and harnesses) nor bench/."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import importlib, json, pkgutil, sys
import fmn
names = sorted(
    m.name for m in pkgutil.walk_packages(fmn.__path__, "fmn.") if m.name != "fmn.__main__"
)
for name in names:
    importlib.import_module(name)
foreign = sorted(m for m in sys.modules if m.split(".")[0] in ("tests", "bench"))
print(json.dumps({"imported": names, "foreign": foreign}))
"""


def test_the_runtime_imports_no_test_harness() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    # Every package is reached, so a harness imported anywhere in fmn/ would show.
    assert {"fmn.api.app", "fmn.consumer.service", "fmn.dev.runner", "fmn.directory.factory"} <= (
        set(report["imported"])
    )
    assert report["foreign"] == []


def test_no_stand_in_is_left_in_the_product() -> None:
    servers = sorted(p.name for p in (ROOT / "fmn" / "directory").glob("server*.py"))
    assert servers == []

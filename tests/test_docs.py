"""The documentation builds, with warnings as errors (broken links, missing pages)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from fmn.cli import cli

ROOT = Path(__file__).resolve().parent.parent


def test_docs_build_strict(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "architecture" / "index.html").is_file()


def test_readme_lists_every_command() -> None:
    """The README's command table: one row for each of `fmn`'s sub-commands, no row for one that
    does not exist."""
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| command | what it does |") :].split("\n\n", 1)[0]
    rows = [line for line in table.splitlines()[2:] if line.startswith("| `fmn ")]
    assert len(rows) == len(table.splitlines()) - 2
    listed = [row.removeprefix("| `fmn ").split()[0].rstrip("`") for row in rows]
    commands = cli.list_commands(click.Context(cli))
    assert commands and sorted(listed) == sorted(commands), listed

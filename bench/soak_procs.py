"""fmn's own processes in the soak, each started from the `fmn` command as in production, with
one configuration file. Every process started here is stopped by `stop_all`, whatever happened.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FMN = str(Path(sys.executable).parent / "fmn")
ROOT = Path(__file__).resolve().parents[1]


def toml_value(value: Any) -> str:
    # JSON strings, numbers, booleans and lists of them are valid TOML values.
    return json.dumps(value)


def write_config(path: Path, sections: dict[str, Any]) -> Path:
    """A TOML file from {"key": value, "section": {...}, "a.b": {...}}."""
    lines = [f"{k} = {toml_value(v)}" for k, v in sections.items() if not isinstance(v, dict)]
    for name, values in sections.items():
        if isinstance(values, dict):
            lines.append(f"\n[{name}]")
            lines += [f"{k} = {toml_value(v)}" for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class FmnProcess:
    """One `fmn ...` process (or, with `program`, another command run from the repository's
    root, such as the test directory server); `restarts` counts starts after the first."""

    name: str
    args: list[str]
    config: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    # When each start happened (time.time()), for telling what a duplicate or a loss followed.
    started_at: list[float] = field(default_factory=list)
    killed_at: list[float] = field(default_factory=list)  # each kill -9 the soak gave it
    # Exits nobody asked for (a crash), with their return codes.
    crashes: list[int] = field(default_factory=list)
    program: list[str] = field(default_factory=lambda: [FMN, "--log-level", "INFO"])

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FMN_")}
        env["FMN_CONFIG"] = str(self.config)
        with self.log.open("ab") as out:
            out.write(f"\n==== start {self.name} at {time.time():.3f}\n".encode())
            self.process = subprocess.Popen(
                [*self.program, *self.args],
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.starts += 1
        self.started_at.append(time.time())

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def check(self) -> int | None:
        """The return code if the process ended on its own since the last check (then it is
        counted as a crash and forgotten), else None."""
        if self.process is None or self.process.poll() is None:
            return None
        code = self.process.returncode
        self.crashes.append(code)
        self.process = None
        return code

    def kill(self) -> None:
        """kill -9, as a crash or an OOM kill would."""
        if self.process is not None:
            self.killed_at.append(time.time())
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)
            self.process = None

    def stop(self, timeout: float = 30) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def stop_all(processes: list[FmnProcess]) -> None:
    # SIGTERM to all first, so they stop in parallel; then wait for each.
    for p in processes:
        if p.process is not None and p.process.poll() is None:
            p.process.send_signal(signal.SIGTERM)
    for p in processes:
        p.stop()

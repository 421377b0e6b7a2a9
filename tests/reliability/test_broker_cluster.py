"""fmn on a three-node RabbitMQ cluster, its queues quorum queues, every process given the three
nodes' URLs: a few hundred bus messages through the consumers and the senders while the node
every process connects to first is killed -9 and started again. Each notification arrives, none
twice (beyond the SMTP acceptance window of open finding 1, which the soak's report knows), and
the processes fail over to another node. The longer run: `bench/soak.py --cluster`
(docs/reliability.md, "A broker cluster")."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.soak import run_soak
from bench.soak_system import SoakConfig

pytestmark = [
    pytest.mark.xdist_group("reliability"),
    pytest.mark.services,  # private RabbitMQ nodes, PostgreSQL and Redis
    pytest.mark.skipif(
        os.geteuid() != 0 and os.environ.get("CI") != "true",
        reason="needs root (runs the services as their users)",
    ),
]


@pytest.fixture
def workdir() -> Iterator[Path]:
    # Not under pytest's base temp (mode 700): the services run as their own users.
    base = Path(tempfile.mkdtemp(prefix="fmn-cluster-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.mark.timeout(900)
async def test_a_node_killed_mid_run_loses_nothing_and_sends_nothing_twice(workdir: Path) -> None:
    config = SoakConfig(
        messages=300,
        rate=20.0,
        mode="restart",
        cluster=True,
        faults=["rabbitmq-node1-kill"],
        fault_seconds=5.0,
        recovery_timeout=120.0,
        workdir=workdir / "soak",
        irc_lease=6.0,
        matrix=False,
    )
    lines: list[str] = []
    report = await run_soak(config, lines.append)
    text = "\n".join(lines) + "\n\n" + report.text()
    assert report.ok, text + f"\n\nlogs in {config.workdir}"
    assert report.delivered + report.dead_lettered == report.expected, text
    assert [f.name for f in report.faults] == [
        "RabbitMQ node 1 of the cluster killed (kill -9) and started again"
    ]
    # Every fmn process connected to node 1 first: each went on through another node.
    logs = "".join(p.read_text(errors="replace") for p in config.workdir.glob("*.log"))
    assert "failed over to" in logs, text

"""SIGUSR1 logs where each asyncio task of a running process is waiting: to see why a process
does not stop, or does not progress, without stopping it (`kill -USR1 <pid>`)."""

from __future__ import annotations

import asyncio
import io
import logging
import signal

log = logging.getLogger(__name__)


def log_task_stacks() -> None:
    out = io.StringIO()
    tasks = asyncio.all_tasks()
    for task in sorted(tasks, key=lambda t: t.get_name()):
        task.print_stack(limit=12, file=out)
    log.warning("%d asyncio tasks, where each waits:\n%s", len(tasks), out.getvalue())


def dump_tasks_on_sigusr1(loop: asyncio.AbstractEventLoop) -> None:
    loop.add_signal_handler(signal.SIGUSR1, log_task_stacks)

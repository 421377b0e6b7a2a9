"""The soak's SMTP server: the tests' aiosmtpd server (tests/senders/smtp_server.py) in a child
process, keeping only what identifies each mail (its Message-ID, recipient and arrival time),
refusing some recipients for good (550) and, on demand, every mail for a while (451).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import re
import time
from multiprocessing.connection import Connection
from typing import Any

Receipt = tuple[float, str, str]  # (arrival, Message-ID, recipient)
REFUSAL = "451 4.3.0 soak: the server refuses mail for a while"
_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(<[^>\r\n]*>)", re.M | re.I)


def _serve(conn: Connection, receipts: Any, refusing: Any, refuse: set[str]) -> None:
    from tests.harness.smtp_server import Sink, SMTPServer

    class Recorder(Sink):
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            if refusing.value:
                return REFUSAL
            found = _MESSAGE_ID.search(envelope.content)
            ident = found.group(1).decode() if found else "(no Message-ID)"
            for rcpt in envelope.rcpt_tos:
                receipts.put((time.time(), ident, rcpt))
            return "250 OK queued"

    server = SMTPServer(Recorder(refuse=set(refuse)))
    server.start()
    conn.send(server.port)
    with contextlib.suppress(EOFError):
        conn.recv()  # "stop", or the parent is gone
    server.stop()


class SmtpProcess:
    def __init__(self, refuse: set[str]) -> None:
        context = multiprocessing.get_context("spawn")
        self._receipts = context.Queue()
        self._refusing = context.Value("b", 0)
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve,
            args=(child, self._receipts, self._refusing, refuse),
            name="soak-smtp",
            daemon=True,
        )
        self.port = 0

    def start(self) -> None:
        self._process.start()
        if not self._conn.poll(60):
            raise RuntimeError("the SMTP server process did not start")
        self.port = self._conn.recv()

    def set_refusing(self, refusing: bool) -> None:
        self._refusing.value = 1 if refusing else 0

    def drain(self) -> list[Receipt]:
        got: list[Receipt] = []
        with contextlib.suppress(queue.Empty):
            while True:
                got.append(self._receipts.get_nowait())
        return got

    def stop(self) -> None:
        if not self._process.is_alive():
            return
        with contextlib.suppress(OSError):
            self._conn.send("stop")
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)

"""The consumer and the senders serve Prometheus metrics on the port their settings name."""

from __future__ import annotations

import datetime as dt

import httpx

from fmn.core.metrics import serve_metrics
from fmn.db.models import DeliveryStatus
from fmn.senders.state import DeliveryLog
from fmn.sendqueue.workitem import MessageInfo, RuleRef, WorkItem
from tests.harness.ports import free_port


def item() -> WorkItem:
    return WorkItem(
        key="m1/irc/alice",
        protocol="irc",
        address="alice",
        user="alice",
        rules=[RuleRef(id=1)],
        message=MessageInfo(id="m1", topic="t", sent_at=dt.datetime.now(dt.UTC), summary="s"),
    )


def value(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_delivery_outcomes_are_served() -> None:
    port = free_port()
    serve_metrics(port, host="127.0.0.1")
    name = 'fmn_sender_deliveries_total{protocol="irc",status="dead"}'
    before = value(httpx.get(f"http://127.0.0.1:{port}/metrics").text, name)
    DeliveryLog(None, flush_interval=1).record(item(), DeliveryStatus.DEAD, detail="no such nick")
    after = value(httpx.get(f"http://127.0.0.1:{port}/metrics").text, name)
    assert after == before + 1
    import fmn.consumer.metrics  # noqa: F401 - registers the consumer's metrics

    assert "fmn_consumer_messages_total" in httpx.get(f"http://127.0.0.1:{port}/metrics").text


def test_no_port_serves_nothing() -> None:
    serve_metrics(None)  # must not raise nor bind anything

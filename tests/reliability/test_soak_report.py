"""The soak's report: how it counts duplicates and losses, and what it says about each
duplicate (what a run needs to find the cause of one)."""

from __future__ import annotations

import pytest

from bench.soak_report import FaultResult, Tally, describe_duplicates
from bench.soak_world import Message, Notification, World

pytestmark = pytest.mark.xdist_group("reliability")


def _world() -> World:
    world = World(directory={}, rules=[])
    world.messages = [Message(f"m{i}", "t", {}, b"{}") for i in range(2)]
    world.notifications = [
        Notification("k0", 0, "email", "a@x", "<a@x>", None),
        Notification("k1", 1, "irc", "nick", "nick line", None),
    ]
    return world


def test_a_duplicate_is_described_with_its_fault_the_delivery_log_and_restarts() -> None:
    tally = Tally(_world())
    tally.published_at = {0: 100.0, 1: 100.0}
    tally.add([(101.0, "<a@x>"), (101.5, "nick line"), (130.0, "<a@x>")])
    fault = FaultResult("kill -9 sender-email", 105.0, 110.0, 3.0, window=(90.0, 140.0))
    rows = {"k0": [(129.9, "sent", 1), (100.9, "sent", 1)]}
    starts = {"sender-email": [110.0], "consumer-1": [50.0]}
    kills = {"sender-email": [101.05], "consumer-1": [40.0]}

    found = describe_duplicates(tally, [fault], rows, starts, kills=kills)

    assert found == [
        "k0 (email) published during 'kill -9 sender-email', arrived +1.000 s, +30.000 s; "
        "delivery log: sent +0.9 s (attempt 1), sent +29.9 s (attempt 1); "
        "started meanwhile: sender-email +10.0 s; killed meanwhile: sender-email +1.050 s"
    ]


def test_a_notification_received_once_is_not_a_duplicate_and_one_never_received_is_missing() -> (
    None
):
    tally = Tally(_world())
    tally.published_at = {0: 100.0, 1: 100.0}
    tally.add([(101.0, "<a@x>"), (102.0, "somebody else's line")])
    assert describe_duplicates(tally, []) == []
    assert [n.key for n in tally.missing()] == ["k1"]
    assert tally.unexpected == {"somebody else's line": 1}

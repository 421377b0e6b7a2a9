"""The soak's report: how it counts duplicates and losses, and what it says about each
duplicate (what a run needs to find the cause of one)."""

from __future__ import annotations

import pytest

from bench.soak_report import FaultResult, Tally, describe_duplicates, in_acceptance_window
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


def test_only_a_mail_taken_just_before_its_senders_kill_is_in_the_acceptance_window() -> None:
    mail, line = _world().notifications
    kills = {"sender-email": [101.05], "sender-irc": [200.0]}

    # The server took the first copy 50 ms before the sender died: open finding 1.
    assert in_acceptance_window(mail, [101.0, 130.0], kills)
    # Seconds away from any kill of the email sender: a duplicate the run must fail on.
    assert not in_acceptance_window(mail, [103.0, 130.0], kills)
    # Three copies, or a chat line beside an IRC sender's kill, are never explained so.
    assert not in_acceptance_window(mail, [101.0, 120.0, 130.0], kills)
    assert not in_acceptance_window(line, [200.0, 210.0], kills)

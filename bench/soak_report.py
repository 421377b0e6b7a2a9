"""What the soak saw, against what the rule engine said it should see: delivered, duplicated,
lost and dead-lettered notifications (each dead letter with its explanation), recovery after
each fault, and latency from bus publish to arrival at the SMTP server or IRC client.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.soak_world import Notification, World


@dataclass
class FaultResult:
    name: str
    injected_at: float
    lifted_at: float
    # Seconds from lifting the fault until every notification of the messages published since
    # the previous fault was over had arrived; None if not within the recovery timeout.
    recovery: float | None
    # Worst publish-to-arrival latency of a message published while the fault was on.
    worst_latency: float | None = None
    # Seconds from lifting the fault until every process consumed its queue again.
    ready: float | None = None
    # Its window: from the end of the previous fault's recovery to the end of its own; the
    # notifications of messages published then that never arrived count against it.
    window: tuple[float, float] = (0.0, 0.0)
    lost: int = 0


@dataclass
class DeadLetterInfo:
    key: str | None
    protocol: str
    reason: str
    explanation: str  # why it was expected, or "UNEXPLAINED"


class Tally:
    """Expected notifications by identity, and the arrivals received so far."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.published_at: dict[int, float] = {}
        self.arrivals: dict[str, list[float]] = {}
        self.unexpected: Counter[str] = Counter()
        self._by_ident: dict[str, Notification] = {}
        # Deliverable notifications not arrived yet: what recovery waits for, kept small.
        self._waiting: dict[str, Notification] = {}
        self._indexed = 0

    def _index(self) -> None:
        for n in self.world.notifications[self._indexed :]:
            self._by_ident[n.ident] = n
            if n.planned_dead is None and n.ident not in self.arrivals:
                self._waiting[n.ident] = n
        self._indexed = len(self.world.notifications)

    def add(self, receipts: list[tuple[float, str]]) -> None:
        self._index()
        for at, ident in receipts:
            if ident in self._by_ident:
                self.arrivals.setdefault(ident, []).append(at)
                self._waiting.pop(ident, None)
            else:
                self.unexpected[ident] += 1

    def missing(self, after: float = -math.inf, before: float = math.inf) -> list[Notification]:
        """Deliverable notifications not arrived yet, of messages published in a time window."""
        self._index()
        return [
            n
            for n in self._waiting.values()
            if after <= self.published_at.get(n.message, math.inf) <= before
        ]

    def latencies(self, *during: tuple[float, float]) -> list[float]:
        """First arrival minus publish time, of messages published in any of the `during`
        windows (all messages without one)."""
        values = []
        for n in self.world.notifications:
            times = self.arrivals.get(n.ident)
            sent = self.published_at.get(n.message)
            if not times or sent is None:
                continue
            if during and not any(start <= sent <= end for start, end in during):
                continue
            values.append(times[0] - sent)
        return values


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass
class Report:
    messages: int
    expected: int
    expected_by_protocol: dict[str, int]
    delivered: int
    duplicated: int  # notifications that arrived more than once
    extra_copies: int  # arrivals beyond the first
    lost: int
    lost_examples: list[str]
    duplicate_examples: list[str]
    dead_lettered: int
    dead_letters: list[DeadLetterInfo]
    unexplained_dead_letters: int
    unexpected_arrivals: int
    rejected_bus_messages: int
    faults: list[FaultResult]
    latency: dict[str, float]
    # Only notifications of messages published while no fault was on or being recovered from.
    calm_latency: dict[str, float]
    crashes: list[str]
    seconds: float
    settings: dict[str, Any] = field(default_factory=dict)
    # Of `duplicated`: mails whose first copy the SMTP server took within ACCEPTANCE_WINDOW of a
    # kill -9 of the email sender (open finding 1 in docs/reliability.md: the server accepted the
    # mail, the sender died before its sent key was written). Any other duplicate fails the run.
    acceptance_window_duplicates: int = 0

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.duplicated > self.acceptance_window_duplicates
            or self.unexplained_dead_letters
            or self.unexpected_arrivals
            or self.crashes
            or any(f.recovery is None or f.ready is None for f in self.faults)
        )

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def text(self) -> str:
        lines = [
            f"messages published      {self.messages:>9,}",
            f"notifications expected  {self.expected:>9,}  "
            + ", ".join(f"{p} {n:,}" for p, n in sorted(self.expected_by_protocol.items())),
            f"delivered               {self.delivered:>9,}",
            f"duplicated              {self.duplicated:>9,}  ({self.extra_copies} extra copies; "
            f"{self.acceptance_window_duplicates} in the SMTP acceptance window of a kill -9)",
            f"lost                    {self.lost:>9,}",
            f"dead-lettered           {self.dead_lettered:>9,}  "
            f"({self.unexplained_dead_letters} unexplained)",
            f"unexpected arrivals     {self.unexpected_arrivals:>9,}",
            f"rejected bus messages   {self.rejected_bus_messages:>9,}",
            f"processes crashed       {len(self.crashes):>9,}",
            "latency (publish -> SMTP server / IRC client), all: "
            + ", ".join(f"{k} {v * 1000:,.0f} ms" for k, v in self.latency.items()),
            "latency, messages published with no fault on: "
            + ", ".join(f"{k} {v * 1000:,.0f} ms" for k, v in self.calm_latency.items()),
            "",
            f"{'fault':<52} {'caught up':>9} {'all ready':>9} {'worst latency':>14} {'lost':>6}",
        ]
        for f in self.faults:
            recovery = "NONE" if f.recovery is None else f"{f.recovery:.1f} s"
            worst = "-" if f.worst_latency is None else f"{f.worst_latency:.1f} s"
            ready = "NONE" if f.ready is None else f"{f.ready:.1f} s"
            lines.append(f"{f.name:<52} {recovery:>9} {ready:>9} {worst:>14} {f.lost:>6}")
        reasons = Counter((d.explanation, d.reason[:90]) for d in self.dead_letters)
        if reasons:
            lines += ["", "dead letters:"]
            lines += [f"  {n:>6} x {why}: {reason}" for (why, reason), n in reasons.items()]
        if self.duplicate_examples:
            lines += ["", "duplicated, for example:", *(f"  {d}" for d in self.duplicate_examples)]
        if self.lost_examples:
            lines += ["", "lost, for example:", *(f"  {k}" for k in self.lost_examples)]
        if self.crashes:
            lines += ["", "crashes:", *(f"  {c}" for c in self.crashes)]
        lines += ["", f"run took {self.seconds:.0f} s; {'OK' if self.ok else 'NOT OK'}"]
        return "\n".join(lines)


# (time, status, attempt) of each row of the delivery log, by idempotency key.
DeliveryRows = dict[str, list[tuple[float, str, int]]]


# How close to a kill -9 of the email sender a mail's first arrival must be to count as the
# acceptance window of open finding 1 (measured: 1-3 ms; generous for a loaded machine).
ACCEPTANCE_WINDOW = 0.1


def in_acceptance_window(
    notification: Notification, times: list[float], kills: dict[str, list[float]]
) -> bool:
    """A mail that arrived exactly twice, its first copy within ACCEPTANCE_WINDOW of a kill -9
    of an email sender."""
    if notification.protocol != "email" or len(times) != 2:
        return False
    moments = [t for name, ts in kills.items() if name.startswith("sender-email") for t in ts]
    return any(abs(t - times[0]) <= ACCEPTANCE_WINDOW for t in moments)


def describe_duplicates(
    tally: Tally,
    faults: list[FaultResult],
    deliveries: DeliveryRows | None = None,
    starts: dict[str, list[float]] | None = None,
    most: int = 20,
    kills: dict[str, list[float]] | None = None,
) -> list[str]:
    """Each notification that arrived twice: when it was published and during which fault's
    window, when each copy arrived, what the senders' delivery log says about it (a copy the
    log records as sent twice was sent twice by the senders; one sent once was duplicated
    before the sender, i.e. two work items), and which fmn processes (re)started between its
    publication and its last arrival. Times are seconds after the message's publication."""
    by_ident = {n.ident: n for n in tally.world.notifications}
    found = []
    for ident, times in tally.arrivals.items():
        if len(times) < 2:
            continue
        n = by_ident[ident]
        sent = tally.published_at.get(n.message, times[0])
        window = next((f.name for f in faults if f.window[0] <= sent < f.window[1]), "no fault")
        text = f"{n.key} ({n.protocol}) published during '{window}', arrived " + ", ".join(
            f"+{t - sent:.3f} s" for t in times
        )
        if deliveries is not None:
            rows = sorted(deliveries.get(n.key, []))
            logged = ", ".join(f"{status} +{t - sent:.1f} s (attempt {a})" for t, status, a in rows)
            text += f"; delivery log: {logged or 'nothing'}"
        # To the millisecond: a copy that arrived just before a kill -9 of its sender is the
        # window between the server's acceptance and the sent key (docs/reliability.md).
        for label, events, digits in (("started", starts, 1), ("killed", kills, 3)):
            during = _events_between(events or {}, sent, max(times))
            if during:
                text += f"; {label} meanwhile: " + ", ".join(
                    f"{name} +{t - sent:.{digits}f} s" for t, name in during
                )
        found.append(text)
    return found[:most]


def _events_between(
    events: dict[str, list[float]], start: float, end: float
) -> list[tuple[float, str]]:
    found = [(t, name) for name, moments in events.items() for t in moments]
    return sorted((t, name) for t, name in found if start <= t <= end)


def latency_summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "p99.9": percentile(values, 99.9),
        "max": max(values),
    }


def explain(letter: DeadLetterInfo, planned: dict[str, Notification]) -> str:
    """Why a dead letter is there, when it was meant to be; "UNEXPLAINED" otherwise."""
    notification = planned.get(letter.key or "")
    if notification is None or notification.planned_dead is None:
        return "UNEXPLAINED"
    if notification.planned_dead not in letter.reason:
        return f"UNEXPLAINED (expected {notification.planned_dead})"
    return f"planned: {notification.address} cannot be delivered to"

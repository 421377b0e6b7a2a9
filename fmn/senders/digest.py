"""A digest: many held notifications for one destination, sent as one message. Each protocol
frames it itself, listing each notification by its line (fmn.notify)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from fmn.sendqueue.workitem import RuleRef, WorkItem

REASONS = {
    "backlog": "more notifications arrived than can be sent one by one",
    "muted": "held while notifications were muted",
    "quiet-hours": "held during your quiet hours",
    "digest-hourly": "your hourly digest",
    "digest-daily": "your daily digest",
}


@dataclass(frozen=True)
class Digest:
    protocol: str
    address: str
    user: str
    items: list[WorkItem]  # oldest first
    reasons: frozenset[str]

    @property
    def team(self) -> str | None:
        # The first item's, as `user` is (fmn.senders.loop).
        return self.items[0].team

    @property
    def title(self) -> str:
        n = len(self.items)
        return f"{n} notification{'s' if n != 1 else ''}"

    @property
    def why(self) -> str:
        return "; ".join(REASONS.get(r, r) for r in sorted(self.reasons))

    @property
    def rules(self) -> list[RuleRef]:
        seen: dict[int, RuleRef] = {}
        for item in self.items:
            for rule in item.rules:
                seen.setdefault(rule.id, rule)
        return list(seen.values())

    def by_application(self) -> str:
        """For example "koji 40, bodhi 17"."""
        counts = Counter(item.message.app_name or "other" for item in self.items)
        return ", ".join(f"{app} {n}" for app, n in counts.most_common())

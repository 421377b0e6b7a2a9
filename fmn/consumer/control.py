"""Control messages every consumer replica must hear itself: rule changes (fmn.rule.*) and
ownership or membership changes (fas.*, pagure.project.*). Each replica binds its own exclusive
queue to these topics; the shared queue still carries them for ordinary matching."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# AMQP binding keys ("#" = any number of words, so any deployment prefix).
CONTROL_BINDINGS = (
    "#.fmn.rule.*.v1",
    "fmn.rule.*.v1",
    "#.fas.user.#",
    "fas.user.#",
    "#.fas.group.#",
    "fas.group.#",
    "#.pagure.project.user.#",
    "pagure.project.user.#",
    "#.pagure.project.group.#",
    "pagure.project.group.#",
)

RULE_TOPIC = re.compile(r"(?:^|\.)fmn\.rule\.(?P<action>create|update|delete)\.v1$")


@dataclass(frozen=True)
class RuleChange:
    action: str
    rule_id: int | None
    username: str


def rule_change(topic: str, body: Any) -> RuleChange | None:
    """The rule change a message announces, or None (not a rule message, or malformed)."""
    match = RULE_TOPIC.search(topic)
    if match is None or not isinstance(body, dict):
        return None
    user = body.get("user")
    rule = body.get("rule")
    username = user.get("name") if isinstance(user, dict) else None
    if not isinstance(username, str) or not username:
        return None
    rule_id = rule.get("id") if isinstance(rule, dict) else None
    return RuleChange(match["action"], rule_id if isinstance(rule_id, int) else None, username)

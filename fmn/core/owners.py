"""Who owns a rule: a user, or a group (a team rule, FMN #179).

A group owns its rules through an owner row named `group:<name>` in `users`: a colon is in no
account name (fmn.directory.names), so it never meets a user's, and everything keyed by the
owner's name (the rules list and its cache, the rule count, change announcements and the
consumer's reload, the senders' preferences and delivery log) works for teams unchanged.
"""

from __future__ import annotations

TEAM_PREFIX = "group:"


def team_owner(group: str) -> str:
    """The owner name of a group's rules."""
    return f"{TEAM_PREFIX}{group}"


def team_of(owner: str) -> str | None:
    """The group owning rules under this owner name; None for a user."""
    return owner[len(TEAM_PREFIX) :] if owner.startswith(TEAM_PREFIX) else None


def is_team(owner: str) -> bool:
    return owner.startswith(TEAM_PREFIX)

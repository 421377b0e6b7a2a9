"""What a bus message changes in the directory (reference §2.6).

FASJSON side (Noggin): ``fas.user.(create|update)``, ``fas.group.(create|update)``,
``fas.group.member.(sponsor|removed)``; FMN 3 ignored ``member.removed``, so leaving a group
never reached its caches. Dist-git side (Pagure): ``pagure.project.(user|group).(added|removed|
access.updated)``. Topics may carry any deployment prefix (``org.fedoraproject.prod.``).

Bodies come in two shapes: fedora-messaging (Noggin wraps its fields in ``msg``, names are
strings) and fedmsg-era (``user: {"username": ...}``, ``group: {"name": ...}``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

FAS_TOPIC = re.compile(
    r"(?:^|\.)fas\.(?P<kind>user|group)\.(?P<event>member\.sponsor|member\.removed|create|update)$"
)
PAGURE_TOPIC = re.compile(
    r"(?:^|\.)pagure\.project\.(?P<kind>user|group)\.(?P<event>access\.updated|added|removed)$"
)


@dataclass(frozen=True)
class DirectoryChange:
    """Whose memberships or ownerships may have changed.

    users: their groups and their projects; groups: their members and their projects;
    projects ("rpms/foo"): their users and their groups.
    """

    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    projects: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.users or self.groups or self.projects)


NO_CHANGE = DirectoryChange()


def _name(value: Any, *keys: str) -> str | None:
    """A name given as a string or as an object carrying it under one of `keys`."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, dict):
        for key in keys:
            if isinstance(value.get(key), str) and value[key]:
                return str(value[key])
    return None


def _names(*values: str | None) -> frozenset[str]:
    return frozenset(v for v in values if v)


def fas_change(body: dict[str, Any]) -> DirectoryChange:
    inner = body.get("msg")
    msg: dict[str, Any] = inner if isinstance(inner, dict) else body
    user = _name(msg.get("user"), "username", "name")
    group = _name(msg.get("group"), "name", "groupname")
    return DirectoryChange(users=_names(user), groups=_names(group))


def _project_fullname(project: dict[str, Any]) -> str | None:
    if project.get("fullname"):
        return str(project["fullname"])
    name, namespace = project.get("name"), project.get("namespace")
    if not name:
        return None
    return f"{namespace}/{name}" if namespace else str(name)


def pagure_change(
    kind: str, body: dict[str, Any], *, distgit_url: str | None = None
) -> DirectoryChange:
    project = body.get("project")
    if not isinstance(project, dict) or project.get("parent"):
        # No project, or a fork: forks own nothing (look-ups use fork=false).
        return NO_CHANGE
    full_url = project.get("full_url")
    if distgit_url and full_url and not full_url.startswith(distgit_url.rstrip("/") + "/"):
        # Another Pagure instance (pagure.io publishes the same topics).
        return NO_CHANGE
    path = _project_fullname(project)
    if kind == "user":
        users = _names(_name(body.get("new_user")), _name(body.get("removed_user")))
        return DirectoryChange(users=users, projects=_names(path))
    groups = [_name(body.get("new_group"))]
    if isinstance(removed := body.get("removed_groups"), list):
        groups.extend(_name(g) for g in removed)
    return DirectoryChange(groups=_names(*groups), projects=_names(path))


def directory_change(
    topic: str, body: dict[str, Any], *, distgit_url: str | None = None
) -> DirectoryChange:
    """What a message with this topic and body changes; NO_CHANGE for any other message.

    With `distgit_url`, project messages about another Pagure instance change nothing; a
    message that does not say where it comes from is taken as ours (invalidating too much
    costs a look-up, too little costs notifications).
    """
    if not isinstance(body, dict):
        return NO_CHANGE
    if FAS_TOPIC.search(topic):
        change = fas_change(body)
    elif match := PAGURE_TOPIC.search(topic):
        change = pagure_change(match["kind"], body, distgit_url=distgit_url)
    else:
        return NO_CHANGE
    log.debug("directory message %s changes %s", topic, change)
    return change

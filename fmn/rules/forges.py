"""Forges whose projects a `projects-followed` rule can name, and how their messages say which
project they are about.

A forge is one small class: its name (what a rule's `forge` says), which message schema classes
it publishes with, and how to read a project's full name from such a message. Adding a forge is
adding a class to FORGES.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from fedora_messaging import message as fm


def project_key(forge: str, name: str) -> str:
    """The key a followed project is indexed and archived under."""
    return f"{forge}:{name}"


class Forge(ABC):
    name: ClassVar[str]

    @abstractmethod
    def publishes_with(self, cls: type[fm.Message]) -> bool:
        """Whether messages of this schema class may come from this forge."""

    @abstractmethod
    def projects(self, message: fm.Message) -> tuple[str, ...]:
        """The full names of this forge's projects the message is about; () when the message is
        not this forge's."""


class PagureIo(Forge):
    """pagure.io: issues, pull requests, commits and project changes, in pagure-messages'
    schemas. src.fedoraproject.org (dist-git) runs Pagure too and sends the same schemas, on
    `org.fedoraproject.*` topics and with its own URLs: pagure.io's are its `io.pagure.*`
    topics, or a project URL on pagure.io."""

    name = "pagure.io"
    TOPIC_PREFIX = "io.pagure."
    HOST = "pagure.io"

    def publishes_with(self, cls: type[fm.Message]) -> bool:
        return cls.__module__.split(".", 1)[0] == "pagure_messages"

    def projects(self, message: fm.Message) -> tuple[str, ...]:
        project = _pagure_project(message.body)
        if project is None:
            return ()
        on_topic = message.topic.startswith(self.TOPIC_PREFIX)
        url = project.get("full_url")
        if not on_topic and not (isinstance(url, str) and urlsplit(url).hostname == self.HOST):
            return ()
        name = _pagure_full_name(project)
        return (name,) if name else ()


def _pagure_project(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The project a Pagure message is about: issues and project changes carry it as
    `project`, pull requests inside `pullrequest`, commits and flags as `repo`."""
    for holder, key in ((body, "project"), (body.get("pullrequest"), "project"), (body, "repo")):
        if isinstance(holder, Mapping):
            project = holder.get(key)
            if isinstance(project, Mapping):
                return project
    return None


def _pagure_full_name(project: Mapping[str, Any]) -> str | None:
    """ "fesco", "fedora-infra/ansible"; None for a fork (it is someone's copy, not the
    project)."""
    fullname = project.get("fullname")
    if not isinstance(fullname, str) or not fullname:
        name, namespace = project.get("name"), project.get("namespace")
        if not isinstance(name, str) or not name:
            return None
        fullname = f"{namespace}/{name}" if isinstance(namespace, str) and namespace else name
    return None if fullname.startswith("forks/") else fullname


FORGES: dict[str, Forge] = {forge.name: forge for forge in (PagureIo(),)}

_by_class: dict[type[fm.Message], tuple[Forge, ...]] = {}


def project_keys(message: fm.Message) -> tuple[str, ...]:
    """The keys ("pagure.io:fesco") of the forge projects a message is about."""
    cls = type(message)
    forges = _by_class.get(cls)
    if forges is None:
        forges = _by_class[cls] = tuple(f for f in FORGES.values() if f.publishes_with(cls))
    if not forges:
        return ()
    return tuple(
        project_key(forge.name, name) for forge in forges for name in forge.projects(message)
    )

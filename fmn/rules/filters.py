"""A generation rule's filters, compiled once into what a message can be checked against quickly.

Semantics are FMN 3's (reference §2.3), all filters must pass:
- applications: empty passes; else the message's app_name, compared case-insensitively, must be
  listed (a message without an app_name fails);
- excluded_applications: empty passes; else the app_name must not be listed (case-insensitive;
  a message without an app_name passes, where FMN 3 crashed);
- severities: the message's severity must be listed; empty means info, warning and error;
- my_actions: False (default) drops the messages whose agent is the rule's owner;
- topic: an fnmatch glob over the whole topic (not a substring), case-sensitive as on Linux.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from fedora_messaging import message as fm

from fmn.rules.incoming import ParsedMessage
from fmn.rules.schema import Filters

SEVERITY_LEVELS = {"debug": fm.DEBUG, "info": fm.INFO, "warning": fm.WARNING, "error": fm.ERROR}
DEFAULT_SEVERITIES = frozenset({fm.INFO, fm.WARNING, fm.ERROR})


def application_key(name: str) -> str:
    """An application name as FMN 3's `applications` filter compares it (ignoring case): the
    filter, the `applications` tracking rule and the archive all compare these."""
    return name.lower()


@dataclass(frozen=True, slots=True)
class CompiledFilters:
    applications: frozenset[str] | None
    excluded_applications: frozenset[str] | None
    severities: frozenset[int]
    topic: Callable[[str], re.Match[str] | None] | None
    my_actions: bool

    def accepts(self, message: ParsedMessage) -> bool:
        """Every filter but my_actions, which depends on the rule's owner: the same answer for
        all the rules sharing these filters, so the index asks once per message."""
        if message.severity not in self.severities:
            return False
        if self.applications is not None or self.excluded_applications is not None:
            app = application_key(message.app_name) if message.app_name else None
            if self.applications is not None and app not in self.applications:
                return False
            if self.excluded_applications is not None and app in self.excluded_applications:
                return False
        return self.topic is None or self.topic(message.topic) is not None


def compile_filters(filters: Filters) -> CompiledFilters:
    """Rules with the same filters share one compiled object (most rules keep the defaults)."""
    return _compile(
        tuple(filters.applications),
        tuple(filters.excluded_applications),
        tuple(filters.severities),
        filters.topic,
        filters.my_actions,
    )


@lru_cache(maxsize=65536)
def _compile(
    applications: tuple[str, ...],
    excluded: tuple[str, ...],
    severities: tuple[str, ...],
    topic: str | None,
    my_actions: bool,
) -> CompiledFilters:
    return CompiledFilters(
        applications=frozenset(map(application_key, applications)) if applications else None,
        excluded_applications=frozenset(map(application_key, excluded)) if excluded else None,
        severities=frozenset(SEVERITY_LEVELS[s] for s in severities) or DEFAULT_SEVERITIES,
        topic=topic_matcher(topic) if topic else None,
        my_actions=my_actions,
    )


@lru_cache(maxsize=65536)
def topic_matcher(pattern: str) -> Callable[[str], re.Match[str] | None]:
    # fnmatch.translate anchors the whole topic, as fnmatch.fnmatch does.
    return re.compile(fnmatch.translate(pattern)).match

"""Topic patterns (fnmatch globs over the whole topic) indexed so that a message's topic finds
the patterns that can match it without trying them all.

A pattern is filed by its literal prefix, segment by segment ("org.fedoraproject.prod.bodhi.*"
under org -> fedoraproject -> prod -> bodhi): a topic walks that trie along its own segments.
A pattern with no literal first segment ("*.bodhi.update.*") is filed under a literal segment
it has ("bodhi"), which a matching topic must have as a segment too (a literal part between
dots, or after the last one, can only match a whole segment). Only a pattern with neither
("*bodhi*") is tried on every topic. The candidates are then checked with the pattern itself.

Which values a topic finds depends on nothing else, and a bus has a few thousand topics: the
answer is kept per topic until the patterns change.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Generic, TypeVar

V = TypeVar("V", bound=Hashable)

WILDCARDS = frozenset("*?[")
# Topics whose answer is kept; past this, the answers are forgotten and found again.
MAX_CACHED_TOPICS = 20_000
_NOTHING: frozenset = frozenset()


@lru_cache(maxsize=65536)
def topic_matcher(pattern: str) -> Callable[[str], re.Match[str] | None]:
    """A topic pattern compiled: FMN 3's `topic` filter, fnmatch over the whole topic
    (fnmatch.translate anchors it), case-sensitive as on Linux."""
    return re.compile(fnmatch.translate(pattern)).match


@dataclass
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)
    patterns: set[str] = field(default_factory=set)


def literal_prefix(pattern: str) -> str:
    for position, char in enumerate(pattern):
        if char in WILDCARDS:
            return pattern[:position]
    return pattern


def _literal_segment(pattern: str) -> str | None:
    """The longest part between dots (not the first) without a wildcard, if any."""
    if "[" in pattern:  # a set may hold a dot: the parts are not the topic's segments
        return None
    parts = [p for p in pattern.split(".")[1:] if p and not WILDCARDS.intersection(p)]
    return max(parts, key=len) if parts else None


class TopicIndex(Generic[V]):
    """Topic pattern -> values (rules), looked up by topic."""

    def __init__(self) -> None:
        self._values: dict[str, set[V]] = {}
        self._root = _Node()
        self._by_segment: dict[str, set[str]] = {}
        self._unanchored: set[str] = set()
        self._cache: dict[str, frozenset[V]] = {}

    def __bool__(self) -> bool:
        return bool(self._values)

    def __len__(self) -> int:
        """How many distinct patterns."""
        return len(self._values)

    def add(self, pattern: str, value: V) -> None:
        values = self._values.get(pattern)
        if values is None:
            values = self._values[pattern] = set()
            self._file(pattern)
        values.add(value)
        self._cache.clear()

    def discard(self, pattern: str, value: V) -> None:
        values = self._values.get(pattern)
        if values is None:
            return
        values.discard(value)
        if not values:
            del self._values[pattern]
            self._unfile(pattern)
        self._cache.clear()

    def find(self, topic: str) -> frozenset[V]:
        """The values of every pattern matching the topic."""
        if not self._values:
            return _NOTHING
        found = self._cache.get(topic)
        if found is None:
            if len(self._cache) >= MAX_CACHED_TOPICS:
                self._cache.clear()
            found = self._cache[topic] = self._find(topic)
        return found

    def _find(self, topic: str) -> frozenset[V]:
        segments = topic.split(".")
        candidates: list[str] = [*self._unanchored]
        node = self._root
        for segment in segments:
            child = node.children.get(segment)
            if child is None:
                break
            node = child
            candidates.extend(node.patterns)
        if self._by_segment:
            for segment in set(segments):
                candidates.extend(self._by_segment.get(segment, ()))
        found: set[V] = set()
        for pattern in candidates:
            if topic_matcher(pattern)(topic) is not None:
                found |= self._values[pattern]
        return frozenset(found)

    def _place(self, pattern: str) -> tuple[list[str], str | None]:
        """Where a pattern is filed: its literal prefix's whole segments (none: by a literal
        segment, or unanchored when that is None too)."""
        segments = literal_prefix(pattern).split(".")[:-1]
        return segments, (None if segments else _literal_segment(pattern))

    def _file(self, pattern: str) -> None:
        segments, segment = self._place(pattern)
        if segments:
            node = self._root
            for part in segments:
                node = node.children.setdefault(part, _Node())
            node.patterns.add(pattern)
        elif segment is not None:
            self._by_segment.setdefault(segment, set()).add(pattern)
        else:
            self._unanchored.add(pattern)

    def _unfile(self, pattern: str) -> None:
        segments, segment = self._place(pattern)
        if segments:
            path = [self._root]
            for part in segments:
                path.append(path[-1].children[part])
            path[-1].patterns.discard(pattern)
            # Drop the nodes left empty, from the leaf up.
            for parent, part, node in zip(path[-2::-1], segments[::-1], path[:0:-1], strict=True):
                if node.patterns or node.children:
                    break
                del parent.children[part]
        elif segment is not None:
            patterns = self._by_segment[segment]
            patterns.discard(pattern)
            if not patterns:
                del self._by_segment[segment]
        else:
            self._unanchored.discard(pattern)

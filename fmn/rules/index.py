"""The rule index: from what a message carries to the few rules that can fire for it.

Keys (FMN 3's tracking rules, reference §2.2):
- a dist-git path ("rpms/foo", "containers/bar", ...) -> artifacts-followed rules naming it;
- a path -> the users and groups owning it, among those some artifacts-owned or
  artifacts-group-owned rule names; each such user or group -> those rules. Ownership is read
  from the directory ahead of time (user -> projects, group -> projects, project -> owners), so
  matching makes no directory call and a rule matches exactly when FMN 3's per-message
  "project owners ∩ params" would;
- a username -> that user's related-events rules (the user is in message.usernames);
- an agent name -> users-followed rules naming that agent;
- an application (as the `applications` filter compares it) -> applications rules naming it;
- a forge project ("pagure.io:fesco", fmn.rules.forges) -> projects-followed rules naming it;
- a topic -> topics rules, through a trie of their patterns' literal prefixes
  (TopicIndex, below), which keeps each topic's answer until the patterns change.

`match` is synchronous and only reads. Every change is async (it may ask the directory) and
serialized by a lock; it asks the directory for everything first and only then mutates, so a
match never sees half an update and a DirectoryUnavailable leaves the index as it was. That error
always propagates: the caller waits and retries, a failed look-up never means "not owned".

Rules (fmn/rules/schema.py) are compiled into the small, shared objects the index holds: a
compiled rule keeps only what matching and notifying need, and generation rules with the same
filters and destinations are one shared object, which keeps 100k rules small in memory.

A generation rule's filters follow FMN 3 (reference §2.3); all of them must pass:
- applications: empty passes; else the message's app_name, compared case-insensitively, must be
  listed (a message without an app_name fails);
- excluded_applications: empty passes; else the app_name must not be listed (case-insensitive;
  a message without an app_name passes, where FMN 3 crashed);
- severities: the message's severity must be listed; empty means info, warning and error;
- my_actions: False (default) drops the messages whose agent is the rule's owner;
- topic: an fnmatch glob over the whole topic (not a substring), case-sensitive as on Linux.
"""

from __future__ import annotations

import asyncio
import fnmatch
import gc
import logging
import re
from collections.abc import Awaitable, Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from operator import attrgetter
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from fmn.core.owners import team_of, team_owner
from fmn.directory.base import Directory
from fmn.rules.forges import project_key
from fmn.rules.incoming import SEVERITY_LEVELS, ParsedMessage
from fmn.rules.schema import (
    ARTIFACT_ATTRIBUTES,
    Applications,
    ArtifactsFollowed,
    Filters,
    ProjectsFollowed,
    Rule,
    application_key,
)
from fmn.sendqueue import workitem

log = logging.getLogger(__name__)

# ---- topic patterns ----------------------------------------------------------------------
# Topic patterns (fnmatch globs over the whole topic) indexed so that a message's topic finds
# the patterns that can match it without trying them all.
#
# A pattern is filed by its literal prefix, segment by segment ("org.fedoraproject.prod.bodhi.*"
# under org -> fedoraproject -> prod -> bodhi): a topic walks that trie along its own segments.
# A pattern with no literal first segment ("*.bodhi.update.*") is filed under a literal segment
# it has ("bodhi"), which a matching topic must have as a segment too (a literal part between
# dots, or after the last one, can only match a whole segment). Only a pattern with neither
# ("*bodhi*") is tried on every topic. The candidates are then checked with the pattern itself.
#
# Which values a topic finds depends on nothing else, and a bus has a few thousand topics: the
# answer is kept per topic until the patterns change.

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


# ---- filters ------------------------------------------------------------------------------

DEFAULT_SEVERITIES = frozenset(SEVERITY_LEVELS[s] for s in ("info", "warning", "error"))
# What the filters but my_actions read of a message: its severity, application key and topic.
MessageKind = tuple[int, str | None, str]


# eq=False: one shared object per distinct set of filters (compile_filters), hashed by
# identity, as match() keys its verdicts by them.
@dataclass(frozen=True, slots=True, eq=False)
class CompiledFilters:
    applications: frozenset[str] | None
    excluded_applications: frozenset[str] | None
    severities: frozenset[int]
    topic: Callable[[str], re.Match[str] | None] | None
    my_actions: bool

    def accepts(self, kind: MessageKind) -> bool:
        """Every filter but my_actions, which depends on the rule's owner: the same answer for
        all the rules sharing these filters and every message of this kind (match() keeps the
        answers per kind)."""
        severity, app_key, topic = kind
        if severity not in self.severities:
            return False
        if self.applications is not None and app_key not in self.applications:
            return False
        if self.excluded_applications is not None and app_key in self.excluded_applications:
            return False
        return self.topic is None or self.topic(topic) is not None


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


# ---- compiled rules -------------------------------------------------------------------------

Destination = tuple[workitem.Protocol, str]  # (protocol, address)


class CompiledGenerationRule(NamedTuple):
    """One shared tuple per distinct filters and destinations (_generation_rule)."""

    filters: CompiledFilters
    destinations: tuple[Destination, ...]


# eq=False: rules are hashed by identity, which keeps the index's sets of rules fast.
@dataclass(frozen=True, slots=True, eq=False)
class CompiledRule:
    id: int
    name: str | None
    owner: str
    team: str | None  # the group when the owner is one (fmn.core.owners), for the work items
    tracking: str
    # artifacts-owned: usernames; artifacts-group-owned: groups; users-followed: agents;
    # artifacts-followed: dist-git paths ("rpms/foo"); related-events: nothing;
    # applications: application keys (schema.application_key); topics: patterns;
    # projects-followed: project keys ("pagure.io:fesco", fmn.rules.forges).
    params: tuple[str, ...]
    generation_rules: tuple[CompiledGenerationRule, ...]
    # What match() reads, per destination of each generation rule: the filters, the destination
    # and the Match it gives while this rule is the destination's only one (most are), built
    # once here rather than per message.
    notices: tuple[tuple[CompiledFilters, Destination, Match], ...] = field(init=False)

    def __post_init__(self) -> None:
        alone: dict[Destination, Match] = {}  # one per destination, whichever generation rules
        notices = []
        for filters, destinations in self.generation_rules:
            for destination in destinations:
                match = alone.get(destination)
                if match is None:
                    match = alone[destination] = Match(*destination, self.owner, (self,))
                notices.append((filters, destination, match))
        object.__setattr__(self, "notices", tuple(notices))


def compile_rule(rule: Rule) -> CompiledRule:
    tracking = rule.tracking_rule
    params: tuple[str, ...]
    if isinstance(tracking, ArtifactsFollowed):
        params = tuple(dict.fromkeys(f"{a.type}/{a.name}" for a in tracking.params))
    elif isinstance(tracking, ProjectsFollowed):
        params = tuple(dict.fromkeys(project_key(p.forge, p.name) for p in tracking.params))
    elif isinstance(tracking, Applications):
        params = tuple(dict.fromkeys(map(application_key, tracking.params)))
    elif tracking.params is None:
        params = ()
    else:
        params = tuple(dict.fromkeys(tracking.params))
    return CompiledRule(
        id=rule.id,
        name=rule.name,
        owner=rule.user.name,
        team=team_of(rule.user.name),
        tracking=tracking.name,
        params=params,
        generation_rules=tuple(
            _generation_rule(
                compile_filters(gr.filters),
                tuple(dict.fromkeys((d.protocol, d.address) for d in gr.destinations)),
            )
            for gr in rule.generation_rules
        ),
    )


@lru_cache(maxsize=65536)
def _generation_rule(
    filters: CompiledFilters, destinations: tuple[Destination, ...]
) -> CompiledGenerationRule:
    return CompiledGenerationRule(filters, destinations)


# ---- the index ------------------------------------------------------------------------------

ARTIFACT_NAMESPACES = frozenset(ARTIFACT_ATTRIBUTES.values())
_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")
_NONE: frozenset[CompiledRule] = frozenset()
_BY_ID = attrgetter("id")
# Kinds of message whose filter verdicts are kept; past this, they are forgotten and found again.
MAX_VERDICT_KINDS = 4_096


class Match(NamedTuple):
    """One destination to notify about a message, with every rule that asked for it."""

    protocol: workitem.Protocol
    address: str
    user: str  # the owner of the first rule
    rules: tuple[CompiledRule, ...]  # by id

    @property
    def rule_ids(self) -> list[int]:
        return [rule.id for rule in self.rules]


class DirectoryChangeLike(Protocol):
    """What fmn.directory.changes.DirectoryChange carries: who may own or belong elsewhere now."""

    @property
    def users(self) -> frozenset[str]: ...
    @property
    def groups(self) -> frozenset[str]: ...
    @property
    def projects(self) -> frozenset[str]: ...


@dataclass
class _State:
    rules: dict[int, CompiledRule] = field(default_factory=dict)
    by_owner: dict[str, set[int]] = field(default_factory=dict)
    # The tables a message is looked up in hold the rules themselves, not their ids.
    followed: dict[str, set[CompiledRule]] = field(default_factory=dict)
    related: dict[str, set[CompiledRule]] = field(default_factory=dict)
    agents: dict[str, set[CompiledRule]] = field(default_factory=dict)
    applications: dict[str, set[CompiledRule]] = field(default_factory=dict)
    projects: dict[str, set[CompiledRule]] = field(default_factory=dict)
    topics: TopicIndex[CompiledRule] = field(default_factory=TopicIndex)
    # artifacts-owned / artifacts-group-owned: who is named, what they own, who owns what.
    user_rules: dict[str, set[CompiledRule]] = field(default_factory=dict)
    group_rules: dict[str, set[CompiledRule]] = field(default_factory=dict)
    user_projects: dict[str, frozenset[str]] = field(default_factory=dict)
    group_projects: dict[str, frozenset[str]] = field(default_factory=dict)
    path_users: dict[str, set[str]] = field(default_factory=dict)
    path_groups: dict[str, set[str]] = field(default_factory=dict)
    # Rule owners the directory no longer knows: their rules produce nothing (FMN 3 #826).
    gone: set[str] = field(default_factory=set)
    present: set[str] = field(default_factory=set)


@dataclass
class _Plan:
    """What the directory said, gathered before anything changes."""

    user_projects: dict[str, list[str]] = field(default_factory=dict)
    group_projects: dict[str, list[str]] = field(default_factory=dict)
    owners: dict[str, dict[str, Any] | None] = field(default_factory=dict)


class _Verdicts(dict[CompiledFilters, bool]):
    """Each filters' verdict on one kind of message, found when first asked; for the rules of
    the message's agent (own=True), my_actions too."""

    __slots__ = ("kind", "own")

    def __init__(self, kind: MessageKind, own: bool) -> None:
        super().__init__()
        self.kind = kind
        self.own = own

    def __missing__(self, filters: CompiledFilters) -> bool:
        verdict = self[filters] = (filters.my_actions or not self.own) and filters.accepts(
            self.kind
        )
        return verdict


class RuleIndex:
    def __init__(self, directory: Directory, *, concurrency: int = 16) -> None:
        self._directory = directory
        self._concurrency = concurrency
        self._state = _State()
        self._lock = asyncio.Lock()
        # A kind of message -> the filters' verdicts for others' rules and the agent's own.
        self._verdicts: dict[MessageKind, tuple[_Verdicts, _Verdicts]] = {}

    # -- reading -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._state.rules)

    def rule(self, rule_id: int) -> CompiledRule | None:
        return self._state.rules.get(rule_id)

    @property
    def gone_users(self) -> frozenset[str]:
        """Rule owners the directory does not know (any more); the consumer may disable them."""
        return frozenset(self._state.gone)

    def stats(self) -> dict[str, int]:
        st = self._state
        return {
            "rules": len(st.rules),
            "owners": len(st.by_owner),
            "gone_owners": len(st.gone),
            "followed_paths": len(st.followed),
            "applications": len(st.applications),
            "followed_projects": len(st.projects),
            "topic_patterns": len(st.topics),
            "owned_paths": len(st.path_users) + len(st.path_groups),
            "expanded_users": len(st.user_projects),
            "expanded_groups": len(st.group_projects),
        }

    def candidates(self, message: ParsedMessage) -> set[int]:
        """Ids of the rules whose tracking rule matches the message (filters not applied)."""
        return {rule.id for rule in self._candidates(message)}

    def _candidates(self, message: ParsedMessage) -> set[CompiledRule]:
        st = self._state
        found: set[CompiledRule] = set()
        for path in message.artifact_paths:
            rules = st.followed.get(path)
            if rules:
                found |= rules
            for user in st.path_users.get(path, ()):
                found |= st.user_rules.get(user, _NONE)
            for group in st.path_groups.get(path, ()):
                found |= st.group_rules.get(group, _NONE)
        for username in message.usernames:
            rules = st.related.get(username)
            if rules:
                found |= rules
        if message.agent_name:
            rules = st.agents.get(message.agent_name)
            if rules:
                found |= rules
        if st.applications and message.app_key:
            rules = st.applications.get(message.app_key)
            if rules:
                found |= rules
        if st.projects:
            for project in message.forge_projects:
                rules = st.projects.get(project)
                if rules:
                    found |= rules
        topics = st.topics.find(message.topic)
        if topics:
            found |= topics
        return found

    def match(self, message: ParsedMessage) -> list[Match]:
        """The destinations to notify, one per (protocol, address), in no particular order."""
        if message.deprecated:
            # The producer sends the same event with the newer schema too (FMN 3).
            return []
        found = self._candidates(message)
        if not found:
            return []
        gone = self._state.gone
        agent = message.agent_name
        # Most rules share a few filter objects; each is asked once per kind of message.
        kind = (message.severity, message.app_key, message.topic)
        verdicts = self._verdicts.get(kind)
        if verdicts is None:
            if len(self._verdicts) >= MAX_VERDICT_KINDS:
                self._verdicts.clear()
            verdicts = self._verdicts[kind] = (_Verdicts(kind, False), _Verdicts(kind, True))
        others, own = verdicts
        by_destination: dict[Destination, Match] = {}
        setdefault = by_destination.setdefault
        shared: dict[Destination, list[CompiledRule]] = {}  # destinations of several rules
        for rule in found:
            owner = rule.owner
            if gone and owner in gone:
                continue
            accepted = own if owner == agent else others
            for filters, destination, alone in rule.notices:
                if accepted[filters]:
                    held = setdefault(destination, alone)
                    if held is not alone:  # another rule's: the same rule's again is `alone`
                        rules = shared.setdefault(destination, [held.rules[0]])
                        if rules[-1] is not rule:
                            rules.append(rule)
        if not by_destination:
            return []
        error = message.validation_error
        if error is not None:
            log.warning("message %s fails its schema (%s): no notification", message.id, error)
            return []
        for destination, rules in shared.items():
            rules.sort(key=_BY_ID)
            by_destination[destination] = Match(*destination, rules[0].owner, tuple(rules))
        return list(by_destination.values())

    # -- changing ------------------------------------------------------------------------------

    async def build(self, rules: Iterable[Rule]) -> None:
        """Replace the whole index with these rules (disabled ones are left out)."""
        with _gc_paused():
            compiled = [compile_rule(rule) for rule in rules if not rule.disabled]
        async with self._lock:
            state = _State()
            plan = await self._plan(state, compiled)
            with _gc_paused():
                _apply_plan(state, plan)
                for rule in compiled:
                    _add_rule(state, rule)
            self._state = state
        log.info("rule index built: %s", self.stats())

    async def set_user_rules(self, username: str, rules: Iterable[Rule]) -> None:
        """Replace all of one user's rules (on fmn.rule.* messages, after reading them back)."""
        compiled = [compile_rule(rule) for rule in rules if not rule.disabled]
        strangers = {rule.owner for rule in compiled} - {username}
        if strangers:
            raise ValueError(f"rules of {sorted(strangers)} given as {username!r}'s")
        async with self._lock:
            st = self._state
            plan = await self._plan(st, compiled)
            removed = [_remove_rule(st, rule_id) for rule_id in list(st.by_owner.get(username, ()))]
            _apply_plan(st, plan)
            for rule in compiled:
                _add_rule(st, rule)
            _forget_unnamed(st, removed)

    async def upsert_rule(self, rule: Rule) -> None:
        """Add or replace one rule; a disabled rule is removed."""
        compiled = [] if rule.disabled else [compile_rule(rule)]
        async with self._lock:
            st = self._state
            plan = await self._plan(st, compiled)
            removed = [_remove_rule(st, rule.id)] if rule.id in st.rules else []
            _apply_plan(st, plan)
            for new in compiled:
                _add_rule(st, new)
            _forget_unnamed(st, removed)

    async def remove_rule(self, rule_id: int) -> bool:
        async with self._lock:
            st = self._state
            if rule_id not in st.rules:
                return False
            _forget_unnamed(st, [_remove_rule(st, rule_id)])
            return True

    async def refresh_user(self, username: str) -> None:
        """Re-read a user: whether they still exist (if they own rules) and what they own."""
        async with self._lock:
            st = self._state
            exists = None
            if username in st.by_owner:
                exists = await self._owner_entry(username) is not None
            projects = None
            if username in st.user_rules:
                projects = await self._directory.get_user_projects(username)
            if exists is not None:
                _set_presence(st, username, exists)
            if projects is not None:
                _set_projects(st.user_projects, st.path_users, username, projects)

    async def refresh_group(self, group: str) -> None:
        """Re-read what a group owns, and whether its team (if it owns rules) still exists."""
        async with self._lock:
            st = self._state
            team = team_owner(group)
            exists = None
            if team in st.by_owner:
                exists = await self._owner_entry(team) is not None
            projects = None
            if group in st.group_rules:
                projects = await self._directory.get_group_projects(group)
            if exists is not None:
                _set_presence(st, team, exists)
            if projects is not None:
                _set_projects(st.group_projects, st.path_groups, group, projects)

    async def refresh_project(self, path: str) -> None:
        """Re-read who owns one project ("rpms/foo")."""
        if path.split("/", 1)[0] not in ARTIFACT_NAMESPACES:
            return
        async with self._lock:
            st = self._state
            users = await self._directory.get_project_users(path)
            groups = await self._directory.get_project_groups(path)
            _set_owners(st.user_projects, st.path_users, st.user_rules, path, users)
            _set_owners(st.group_projects, st.path_groups, st.group_rules, path, groups)

    async def apply_directory_change(self, change: DirectoryChangeLike) -> None:
        """Re-expand after an ownership or membership message (pagure.project.user/group.*,
        fas.user/group.*), once the directory's own caches have forgotten it."""
        for user in sorted(change.users):
            await self.refresh_user(user)
        for group in sorted(change.groups):
            await self.refresh_group(group)
        for path in sorted(change.projects):
            await self.refresh_project(path)

    async def _plan(self, st: _State, rules: list[CompiledRule]) -> _Plan:
        users: set[str] = set()
        groups: set[str] = set()
        owners: set[str] = set()
        for rule in rules:
            if rule.tracking == "artifacts-owned":
                users.update(u for u in rule.params if u not in st.user_projects)
            elif rule.tracking == "artifacts-group-owned":
                groups.update(g for g in rule.params if g not in st.group_projects)
            if rule.owner not in st.present and rule.owner not in st.gone:
                owners.add(rule.owner)
        directory = self._directory
        return _Plan(
            user_projects=await self._fetch(users, directory.get_user_projects),
            group_projects=await self._fetch(groups, directory.get_group_projects),
            owners=await self._fetch(owners, self._owner_entry),
        )

    async def _owner_entry(self, owner: str) -> dict[str, Any] | None:
        """A rule owner's directory entry: a user's, or for a team (fmn.core.owners) its group
        while the group has members; None when gone."""
        group = team_of(owner)
        if group is None:
            return await self._directory.get_user(owner)
        return {"group": group} if await self._directory.get_group_members(group) else None

    async def _fetch(
        self, keys: Iterable[_K], fetch: Callable[[_K], Awaitable[_V]]
    ) -> dict[_K, _V]:
        """Ask the directory for every key, a few at a time; the first failure propagates."""
        pending = iter(keys)
        results: dict[_K, _V] = {}

        async def worker() -> None:
            for key in pending:
                results[key] = await fetch(key)

        # A few workers rather than a task per key: 100k keys must not mean 100k tasks.
        tasks = [asyncio.ensure_future(worker()) for _ in range(self._concurrency)]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            # Raise the directory's own error (not an ExceptionGroup), without leftovers.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return results


# -- state changes: synchronous, after every directory answer is in ------------------------------


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a synchronous bulk step creates only objects that
    stay: collecting would scan the whole growing index again and again for nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _apply_plan(st: _State, plan: _Plan) -> None:
    for user, projects in plan.user_projects.items():
        _set_projects(st.user_projects, st.path_users, user, projects)
    for group, projects in plan.group_projects.items():
        _set_projects(st.group_projects, st.path_groups, group, projects)
    for owner, found in plan.owners.items():
        _set_presence(st, owner, found is not None)


def _add_rule(st: _State, rule: CompiledRule) -> None:
    st.rules[rule.id] = rule
    st.by_owner.setdefault(rule.owner, set()).add(rule.id)
    if rule.tracking == "topics":
        for pattern in rule.params:
            st.topics.add(pattern, rule)
        return
    table, keys = _rule_keys(st, rule)
    for key in keys:
        table.setdefault(key, set()).add(rule)


def _remove_rule(st: _State, rule_id: int) -> CompiledRule:
    rule = st.rules.pop(rule_id)
    _discard(st.by_owner, rule.owner, rule_id)
    if rule.tracking == "topics":
        for pattern in rule.params:
            st.topics.discard(pattern, rule)
        return rule
    table, keys = _rule_keys(st, rule)
    for key in keys:
        _discard(table, key, rule)
    return rule


def _rule_keys(
    st: _State, rule: CompiledRule
) -> tuple[dict[str, set[CompiledRule]], tuple[str, ...]]:
    """The table a rule is filed in, and under which keys (topics rules: see _add_rule)."""
    if rule.tracking == "related-events":
        return st.related, (rule.owner,)
    tables = {
        "artifacts-followed": st.followed,
        "artifacts-owned": st.user_rules,
        "artifacts-group-owned": st.group_rules,
        "users-followed": st.agents,
        "applications": st.applications,
        "projects-followed": st.projects,
    }
    return tables[rule.tracking], rule.params


def _forget_unnamed(st: _State, removed: list[CompiledRule]) -> None:
    """After removing rules: drop what only they needed (ownership of the users and groups
    they named, whether their owner exists)."""
    for rule in removed:
        if rule.tracking == "artifacts-owned":
            for user in rule.params:
                if user not in st.user_rules and user in st.user_projects:
                    _set_projects(st.user_projects, st.path_users, user, ())
                    del st.user_projects[user]
        elif rule.tracking == "artifacts-group-owned":
            for group in rule.params:
                if group not in st.group_rules and group in st.group_projects:
                    _set_projects(st.group_projects, st.path_groups, group, ())
                    del st.group_projects[group]
        if rule.owner not in st.by_owner:
            st.present.discard(rule.owner)
            st.gone.discard(rule.owner)


def _set_presence(st: _State, owner: str, exists: bool) -> None:
    if exists:
        st.present.add(owner)
        st.gone.discard(owner)
    else:
        st.gone.add(owner)
        st.present.discard(owner)
        log.info("rule owner %s is not in the directory: their rules produce nothing", owner)


def _set_projects(
    projects_of: dict[str, frozenset[str]],
    owners_of: dict[str, set[str]],
    owner: str,
    projects: Iterable[str],
) -> None:
    """Record what a user (or group) owns now, keeping path -> owners in step."""
    new = frozenset(p for p in projects if p.split("/", 1)[0] in ARTIFACT_NAMESPACES)
    old = projects_of.get(owner, frozenset())
    for path in old - new:
        _discard(owners_of, path, owner)
    for path in new - old:
        owners_of.setdefault(path, set()).add(owner)
    projects_of[owner] = new


def _set_owners(
    projects_of: dict[str, frozenset[str]],
    owners_of: dict[str, set[str]],
    named: dict[str, set[CompiledRule]],
    path: str,
    owners: Iterable[str],
) -> None:
    """Record who owns a project now, among the users (or groups) some rule names."""
    new = {o for o in owners if o in named}
    old = owners_of.get(path, set())
    for owner in old - new:
        projects_of[owner] = projects_of.get(owner, frozenset()) - {path}
    for owner in new - old:
        projects_of[owner] = projects_of.get(owner, frozenset()) | {path}
    if new:
        owners_of[path] = new
    else:
        owners_of.pop(path, None)


def _discard(table: dict[str, set[_V]], key: str, value: _V) -> None:
    values = table.get(key)
    if values is not None:
        values.discard(value)
        if not values:
            del table[key]

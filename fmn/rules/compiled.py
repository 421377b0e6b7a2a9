"""Rules (fmn/rules/schema.py) compiled into the small, shared objects the index holds.

A compiled rule keeps only what matching and notifying need. Generation rules with the same
filters and destinations are one shared object, which keeps 100k rules small in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from fmn.rules.filters import CompiledFilters, application_key, compile_filters
from fmn.rules.forges import project_key
from fmn.rules.schema import Applications, ArtifactsFollowed, ProjectsFollowed, Rule
from fmn.sendqueue.workitem import Protocol

Destination = tuple[Protocol, str]  # (protocol, address)


@dataclass(frozen=True, slots=True)
class CompiledGenerationRule:
    filters: CompiledFilters
    destinations: tuple[Destination, ...]


# eq=False: rules are hashed by identity, which keeps the index's sets of rules fast.
@dataclass(frozen=True, slots=True, eq=False)
class CompiledRule:
    id: int
    name: str | None
    owner: str
    tracking: str
    # artifacts-owned: usernames; artifacts-group-owned: groups; users-followed: agents;
    # artifacts-followed: dist-git paths ("rpms/foo"); related-events: nothing;
    # applications: application keys (fmn.rules.filters); topics: patterns;
    # projects-followed: project keys ("pagure.io:fesco", fmn.rules.forges).
    params: tuple[str, ...]
    generation_rules: tuple[CompiledGenerationRule, ...]


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

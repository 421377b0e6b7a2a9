"""What the rule editor's pickers offer for fmn's own tracking rules, read from the archive of
recent messages: how many messages a topic pattern matches, the forges, and the projects seen
on a forge."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

from fmn import archive
from fmn.api.deps import RateLimitedUser, ReadSessionDep, SettingsDep
from fmn.api.schemas import TopicCount, TopicCounts
from fmn.rules.forges import FORGES, project_key
from fmn.rules.index import literal_prefix, topic_matcher
from fmn.rules.schema import MAX_NAME_LENGTH, TopicPattern

router = APIRouter(tags=["misc"])

# Topics listed with a pattern's count (the busiest first).
MAX_TOPICS_SHOWN = 20
MAX_PROJECTS_SHOWN = 50
_PATTERN: TypeAdapter[str] = TypeAdapter(TopicPattern)
ProjectQuery = Annotated[str, Query(max_length=MAX_NAME_LENGTH, pattern=r"^[^\x00-\x1f\x7f]*$")]


@router.get("/topics", response_model=TopicCounts)
async def count_topics(
    _user: RateLimitedUser,
    session: ReadSessionDep,
    settings: SettingsDep,
    # Checked below rather than by a Query pattern: a generated client (and schemathesis) draws
    # such regex-constrained strings inconsistently.
    pattern: Annotated[str, Query(min_length=1, max_length=MAX_NAME_LENGTH)],
    days: Annotated[int, Query(ge=1, le=14)] = 7,
) -> TopicCounts:
    """How many archived messages of the last `days` days a topic pattern matches (the
    `topic` filter's and `topics` rule's fnmatch), and the busiest of their topics."""
    try:
        _PATTERN.validate_python(pattern)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("query", "pattern")} for e in exc.errors(include_url=False)]
        ) from None
    now = dt.datetime.now(dt.UTC)
    since = max(
        now - dt.timedelta(days=days),
        archive.retention_cutoff(settings.archive.retention_days, now),
    )
    counts = await archive.topic_counts(session, literal_prefix(pattern), since)
    match = topic_matcher(pattern)
    matching = sorted(
        ((topic, n) for topic, n in counts if match(topic) is not None), key=lambda c: (-c[1], c[0])
    )
    total = sum(n for _, n in matching)
    read_days = (now - since) / dt.timedelta(days=1)
    return TopicCounts(
        pattern=pattern,
        days=days,
        messages=total,
        per_day=round(total / read_days, 1),
        topics=[TopicCount(topic=t, count=n) for t, n in matching[:MAX_TOPICS_SHOWN]],
    )


@router.get("/forges", response_model=list[str])
async def list_forges() -> list[str]:
    """The forges a projects-followed rule can name."""
    return sorted(FORGES)


@router.get("/forges/{forge}/projects", response_model=list[str])
async def search_projects(
    forge: str, _user: RateLimitedUser, session: ReadSessionDep, name: ProjectQuery = ""
) -> list[str]:
    """Projects of the forge that recent messages were about, whose name contains `name`."""
    if forge not in FORGES:
        raise HTTPException(404, f"No forge {forge!r}")
    prefix = project_key(forge, "")
    values = await archive.key_values(
        session, archive.PROJECT_KIND, prefix, name, MAX_PROJECTS_SHOWN
    )
    return [value[len(prefix) :] for value in values]

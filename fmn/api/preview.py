"""Rule previews: what a draft rule would have sent over the last days, read from the archive.

Only the archived messages whose match keys could satisfy the draft's tracking rule are read
(fmn.archive, which the consumer writes), newest first, and each is run through the consumer's
own rule engine (fmn.rules.index via fmn.rules.match). Reading stops when the time budget is
spent: the answer then says it is incomplete.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from fmn import archive
from fmn.directory.base import Directory
from fmn.rules import schema
from fmn.rules.forges import project_key
from fmn.rules.incoming import ParsedMessage
from fmn.rules.index import RuleIndex, literal_prefix
from fmn.rules.match import match_one
from fmn.rules.schema import application_key

# Messages per data fetch.
FETCH_BATCH = 200
# Time slices: the first one, the smallest, and how many candidates one should hold.
SLICE_START = dt.timedelta(hours=1)
SLICE_MIN = dt.timedelta(minutes=1)
SLICE_TARGET = 2000
# Directory look-ups at once while expanding ownership.
DIRECTORY_CONCURRENCY = 16


OwnershipRule = schema.ArtifactsOwned | schema.ArtifactsGroupOwned


def rule_keys(tracking: schema.TrackingRule, owner: str) -> dict[str, set[str]]:
    """The archive keys a message needs for a tracking rule that names no owners to match
    (any one of them)."""
    if isinstance(tracking, schema.RelatedEvents):
        return {archive.USER_KIND: {owner}}
    if isinstance(tracking, schema.UsersFollowed):
        return {archive.AGENT_KIND: set(tracking.params)}
    if isinstance(tracking, schema.ArtifactsFollowed):
        return archive.path_keys(f"{a.type}/{a.name}" for a in tracking.params)
    if isinstance(tracking, schema.Applications):
        return {archive.APP_KIND: {application_key(a) for a in tracking.params}}
    if isinstance(tracking, schema.ProjectsFollowed):
        return {archive.PROJECT_KIND: {project_key(p.forge, p.name) for p in tracking.params}}
    raise TypeError(f"{tracking.name} has no keys (expanded through the directory, or topics)")


async def expand_owners(
    tracking: OwnershipRule, directory: Directory, deadline: float
) -> tuple[dict[str, list[str]], bool]:
    """The projects of each user (or group) the rule names, as far as the directory answers
    before `deadline` (monotonic time): (projects by name, whether every name was expanded)."""
    lookup: Callable[[str], Awaitable[list[str]]] = (
        directory.get_user_projects
        if isinstance(tracking, schema.ArtifactsOwned)
        else directory.get_group_projects
    )
    semaphore = asyncio.Semaphore(DIRECTORY_CONCURRENCY)

    async def projects(name: str) -> list[str]:
        async with semaphore:
            return await lookup(name)

    tasks = {name: asyncio.ensure_future(projects(name)) for name in dict.fromkeys(tracking.params)}
    if not tasks:
        return {}, True
    done, pending = await asyncio.wait(
        tasks.values(), timeout=max(0.0, deadline - time.monotonic())
    )
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    found = {name: task.result() for name, task in tasks.items() if task in done}
    return found, not pending


class _Expanded:
    """The directory, with the ownership answers a preview already has: the rule index asks
    for them again and must not wait for the directory twice."""

    def __init__(
        self, directory: Directory, users: dict[str, list[str]], groups: dict[str, list[str]]
    ) -> None:
        self._directory = directory
        self._users = users
        self._groups = groups

    async def get_user_projects(self, username: str) -> list[str]:
        if username in self._users:
            return self._users[username]
        return await self._directory.get_user_projects(username)

    async def get_group_projects(self, group: str) -> list[str]:
        if group in self._groups:
            return self._groups[group]
        return await self._directory.get_group_projects(group)

    async def get_user(self, username: str) -> dict[str, Any] | None:
        return await self._directory.get_user(username)

    async def get_user_groups(self, username: str) -> list[str]:
        return await self._directory.get_user_groups(username)

    async def get_group_members(self, group: str) -> list[str]:
        return await self._directory.get_group_members(group)

    async def get_group_sponsors(self, group: str) -> list[str]:
        return await self._directory.get_group_sponsors(group)

    async def search_users(self, pattern: str) -> list[str]:
        return await self._directory.search_users(pattern)

    async def get_project_users(self, path: str) -> list[str]:
        return await self._directory.get_project_users(path)

    async def get_project_groups(self, path: str) -> list[str]:
        return await self._directory.get_project_groups(path)

    async def search_projects(self, pattern: str) -> list[str]:
        return await self._directory.search_projects(pattern)


@dataclass
class Hit:
    message: ParsedMessage
    destinations: list[schema.Destination]


@dataclass
class Preview:
    days: list[dt.date]
    total: int = 0
    scanned: int = 0
    complete: bool = True
    per_day: dict[dt.date, int] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)  # only the requested page's
    # The time read, from its start to now (an incomplete preview read the newest part).
    read_from: dt.datetime | None = None
    read_until: dt.datetime | None = None

    def expected_per_day(self) -> float:
        """Notifications a day at the rate of the time read (0 when nothing was read)."""
        if self.read_from is None or self.read_until is None:
            return 0.0
        days = (self.read_until - self.read_from) / dt.timedelta(days=1)
        # At least an hour: a few hits in the first minutes must not extrapolate to thousands.
        return self.total / max(days, 1 / 24)


def draft_rule(draft: schema.RuleBase, owner: str) -> schema.Rule:
    """The draft as a rule the index takes (enabled, with a placeholder id)."""
    data = draft.model_dump(mode="json")
    data.update(id=0, disabled=False, user={"name": owner})
    return schema.Rule.model_validate(data)


class _Slices:
    """Time slices from now back to `since`, sized so that each holds a few thousand
    candidates: a rule matching little reads the week in a few queries, a rule matching much
    reads it in small steps and stops, newest first, when the time budget is spent."""

    def __init__(self, since: dt.datetime, end: dt.datetime) -> None:
        self.since = since
        self.end = end
        self.length = SLICE_START

    def next(self) -> tuple[dt.datetime, dt.datetime] | None:
        if self.end <= self.since:
            return None
        start = max(self.since, self.end - self.length)
        window = (start, self.end)
        self.end = start
        return window

    def adapt(self, found: int) -> None:
        if found < SLICE_TARGET // 2:
            self.length *= 2
        elif found > SLICE_TARGET * 2:
            self.length = max(SLICE_MIN, self.length / 2)


async def run_preview(
    session: AsyncSession,
    directory: Directory,
    draft: schema.RuleBase,
    owner: str,
    *,
    days: int,
    retention_days: int,
    deadline: float,
    offset: int,
    limit: int,
) -> Preview:
    """The draft's notifications, read until `deadline` (monotonic time): the request's whole
    budget, of which expanding owners through the directory may take half."""
    now = dt.datetime.now(dt.UTC)
    window = [now.date() - dt.timedelta(days=i) for i in range(days - 1, -1, -1)]
    # Never past the retention: older rows are only waiting for the next prune, and a preview
    # that counted them would show more than the archive promises to hold.
    since = max(
        dt.datetime.combine(window[0], dt.time(), tzinfo=dt.UTC),
        archive.retention_cutoff(retention_days, now),
    )
    preview = Preview(days=window, per_day=dict.fromkeys(window, 0))

    preview.read_until = now
    tracking = draft.tracking_rule
    find: Callable[[dt.datetime, dt.datetime], Awaitable[list[int]]]
    keys: dict[str, set[str]] | None = None
    if isinstance(tracking, schema.Topics):
        # Topics are not archive keys: the archive is read by the patterns' literal prefixes.
        prefixes = {literal_prefix(pattern) for pattern in tracking.params}
        find = partial(archive.topic_candidates, session, prefixes)
    elif isinstance(tracking, OwnershipRule):
        halfway = time.monotonic() + max(0.0, deadline - time.monotonic()) / 2
        found, preview.complete = await expand_owners(tracking, directory, halfway)
        if not preview.complete:  # preview what was expanded in time
            params = [name for name in tracking.params if name in found]
            tracking = tracking.model_copy(update={"params": params})
            draft = draft.model_copy(update={"tracking_rule": tracking})
        keys = archive.path_keys(path for paths in found.values() for path in paths)
        users, groups = (found, {}) if isinstance(tracking, schema.ArtifactsOwned) else ({}, found)
        directory = _Expanded(directory, users, groups)
        find = partial(archive.candidates, session, keys)
    else:
        keys = rule_keys(tracking, owner)
        find = partial(archive.candidates, session, keys)
    if keys is not None and not any(keys.values()):
        preview.read_from = since  # nothing can match: the whole window is read
        return preview
    index = RuleIndex(directory)
    try:
        async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
            await index.build([draft_rule(draft, owner)])
    except TimeoutError:
        preview.complete = False
        return preview
    # A little past now: a producer's clock may run ahead.
    slices = _Slices(since, now + dt.timedelta(hours=1))
    while (bounds := slices.next()) is not None:
        if time.monotonic() > deadline:
            preview.complete = False
            break
        pks = await find(*bounds)
        slices.adapt(len(pks))
        for batch in _batches(pks, FETCH_BATCH):
            if time.monotonic() > deadline:
                preview.complete = False
                return preview
            await _match_batch(session, index, batch, preview, offset, limit)
            # Matching is CPU work: let other requests of this process run between batches.
            await asyncio.sleep(0)
        preview.read_from = bounds[0]
    # A young archive (a new deployment) holds less than the window: the rate is over what it has.
    oldest = await archive.oldest_since(session, since)
    if oldest is not None and preview.read_from is not None:
        preview.read_from = max(preview.read_from, oldest)
    return preview


async def _match_batch(
    session: AsyncSession,
    index: RuleIndex,
    batch: list[int],
    preview: Preview,
    offset: int,
    limit: int,
) -> None:
    by_pk = await archive.read_messages(session, batch)
    for pk in batch:  # keep newest-first order
        if pk not in by_pk:
            continue  # pruned meanwhile
        sent_at, data = by_pk[pk]
        preview.scanned += 1
        result = match_one(index, data)
        if not result.matches or result.message is None:
            continue
        day = _utc_date(sent_at)
        if day in preview.per_day:
            preview.per_day[day] += 1
        if offset <= preview.total < offset + limit:
            destinations = [
                schema.Destination(protocol=m.protocol, address=m.address) for m in result.matches
            ]
            preview.hits.append(Hit(result.message, destinations))
        preview.total += 1


def _batches(items: Sequence[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _utc_date(value: dt.datetime) -> dt.date:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).date()

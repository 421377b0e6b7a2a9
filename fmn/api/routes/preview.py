"""POST /users/{username}/rules/preview: a draft rule's notifications over the last days."""

from __future__ import annotations

import time

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError

from fmn.api.deps import DirectoryDep, RateLimitedOwner, ReadSessionDep, ServicesDep, Username
from fmn.api.metrics import PREVIEW_SCANNED
from fmn.api.pagination import PageDep
from fmn.api.preview import run_preview
from fmn.api.rule_requests import check_account_names, digest_mode
from fmn.api.schemas import (
    DayCount,
    Detail,
    PreviewMessage,
    PreviewNotification,
    PreviewRequest,
    PreviewResult,
)
from fmn.core.settings import APISettings
from fmn.db.models import DigestMode
from fmn.rules import schema

router = APIRouter(prefix="/users/{username}/rules", tags=["users/rules"])


def check_size(rule: schema.RuleBase, api: APISettings) -> None:
    """A preview expands each name through the directory and queries each artifact: both are
    capped, so that one preview fits its time budget."""
    tracking = rule.tracking_rule
    if isinstance(tracking, schema.ArtifactsFollowed):
        most, what = api.preview_max_artifacts, "artifacts"
    elif isinstance(tracking, schema.RelatedEvents):
        return
    else:
        most, what = api.preview_max_names, "names"
    if len(tracking.params) > most:
        raise RequestValidationError(
            [
                {
                    "type": "too_long",
                    "loc": ("body", "rule", "tracking_rule", "params"),
                    "msg": f"A preview takes at most {most} {what} ({len(tracking.params)} given)",
                    "input": None,
                }
            ]
        )


@router.post(
    "/preview",
    response_model=PreviewResult,
    responses={429: {"model": Detail, "description": "A preview of yours is already running"}},
)
async def preview_rule(
    username: Username,
    draft: PreviewRequest,
    _owner: RateLimitedOwner,
    session: ReadSessionDep,
    directory: DirectoryDep,
    services: ServicesDep,
    page: PageDep,
) -> PreviewResult:
    """What the draft would have sent over the last `days` days (newest first, paginated by
    `page`/`page_size`), from the archive; `complete` is false if the time budget ran out
    (directory look-ups included) before every name was expanded or every message read."""
    deadline = time.monotonic() + services.settings.api.preview_time_budget
    check_account_names(draft.rule, ("body", "rule"))
    check_size(draft.rule, services.settings.api)
    async with services.previews.enter(username, deadline):
        preview = await run_preview(
            session,
            directory,
            draft.rule,
            username,
            days=draft.days,
            retention_days=services.settings.archive.retention_days,
            deadline=deadline,
            offset=page.offset,
            limit=page.size,
        )
    PREVIEW_SCANNED.inc(preview.scanned)
    expected = preview.expected_per_day()
    suggest = expected > services.settings.api.preview_digest_threshold
    if suggest:
        suggest = await digest_mode(session, username) == DigestMode.NONE
    return PreviewResult(
        total=preview.total,
        complete=preview.complete,
        scanned=preview.scanned,
        per_day=[DayCount(date=d, count=preview.per_day[d]) for d in preview.days],
        expected_per_day=round(expected, 1),
        digest_suggested=suggest,
        notifications=[
            PreviewNotification(
                message=PreviewMessage(
                    id=hit.message.id,
                    topic=hit.message.topic,
                    sent_at=hit.message.sent_at,
                    app_name=hit.message.app_name,
                    summary=hit.message.summary,
                    url=hit.message.url,
                ),
                destinations=hit.destinations,
            )
            for hit in preview.hits
        ],
    )

"""POST /users/{username}/rules/preview: a draft rule's notifications over the last days."""

from __future__ import annotations

from fastapi import APIRouter

from fmn.api.deps import DirectoryDep, RateLimitedOwner, ReadSessionDep, ServicesDep, Username
from fmn.api.metrics import PREVIEW_SCANNED
from fmn.api.pagination import PageDep
from fmn.api.preview import run_preview
from fmn.api.rule_service import check_account_names
from fmn.api.schemas import (
    DayCount,
    PreviewMessage,
    PreviewNotification,
    PreviewRequest,
    PreviewResult,
)

router = APIRouter(prefix="/users/{username}/rules", tags=["users/rules"])


@router.post("/preview", response_model=PreviewResult)
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
    `page`/`page_size`), from the archive; `complete` is false if the time budget ran out."""
    check_account_names(draft.rule, ("body", "rule"))
    async with services.preview_slots:
        preview = await run_preview(
            session,
            directory,
            draft.rule,
            username,
            days=draft.days,
            retention_days=services.settings.archive.retention_days,
            budget=services.settings.api.preview_time_budget,
            offset=page.offset,
            limit=page.size,
        )
    PREVIEW_SCANNED.inc(preview.scanned)
    return PreviewResult(
        total=preview.total,
        complete=preview.complete,
        scanned=preview.scanned,
        per_day=[DayCount(date=d, count=preview.per_day[d]) for d in preview.days],
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

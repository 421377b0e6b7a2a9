"""A user's web inbox: the list, counts, read state, and its live stream (Server-Sent Events).
Only the user's own (403 for anyone else, admins included); an entry that is not theirs is 404."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession
from sse_starlette import EventSourceResponse, ServerSentEvent

from fmn.api.deps import MAX_ID, Owner, ReadSessionDep, ServicesDep, SessionDep, Username
from fmn.api.pagination import PageDep
from fmn.api.services import Services
from fmn.inbox import store
from fmn.inbox.events import Event
from fmn.inbox.store import InboxEntryPublic
from fmn.rules.schema import MAX_NAME_LENGTH

log = logging.getLogger(__name__)
router = APIRouter(prefix="/users/{username}/inbox", tags=["users/inbox"])
UNREAD_HEADER = "X-Unread-Count"
# Entries read at a time when a stream catches up.
STREAM_BATCH = 100


class InboxCount(BaseModel):
    unread: int
    total: int


class ReadState(BaseModel):
    model_config = ConfigDict(extra="forbid")
    read: bool


class ReadAll(BaseModel):
    model_config = ConfigDict(extra="forbid")
    before_id: int | None = Field(
        None, ge=1, le=MAX_ID, description="Only entries up to this id (those the user saw)"
    )


class Marked(BaseModel):
    marked: int


async def user_id_or_404(session: AsyncSession, username: str) -> int:
    user_id = await store.user_id_of(session, username)
    if user_id is None:  # the owner's row is made at log-in: only if deleted meanwhile
        raise HTTPException(404, f"No user {username}")
    return user_id


async def _announce(services: Services, username: str) -> None:
    try:
        await services.get_inbox_events().publish(Event(username, "read"))
    except Exception as exc:
        log.warning("could not announce %s's read state (%r)", username, exc)


@router.get("", response_model=list[InboxEntryPublic])
async def list_inbox(
    username: Username,
    _owner: Owner,
    session: ReadSessionDep,
    page: PageDep,
    response: Response,
    rule_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    application: Annotated[str | None, Query(min_length=1, max_length=MAX_NAME_LENGTH)] = None,
    unread: bool = False,
) -> list[InboxEntryPublic]:
    """The user's notifications, newest first; the unread count in X-Unread-Count."""
    user_id = await user_id_or_404(session, username)
    filters = store.Filters(rule_id=rule_id, application=application, unread=unread)
    total = await store.count(session, user_id, filters)
    page.headers(response, total)
    response.headers[UNREAD_HEADER] = str(await store.count(session, user_id, store.UNREAD))
    if page.offset >= total:
        return []
    return await store.entries(session, user_id, filters, offset=page.offset, limit=page.limit)


@router.get("/count", response_model=InboxCount)
async def count_inbox(username: Username, _owner: Owner, session: ReadSessionDep) -> InboxCount:
    user_id = await user_id_or_404(session, username)
    return InboxCount(
        unread=await store.count(session, user_id, store.UNREAD),
        total=await store.count(session, user_id),
    )


@router.patch("/{entry_id}", response_model=InboxEntryPublic)
async def mark_entry(
    username: Username,
    entry_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    state: ReadState,
    _owner: Owner,
    session: SessionDep,
    services: ServicesDep,
) -> InboxEntryPublic:
    """Mark one entry read or unread."""
    user_id = await user_id_or_404(session, username)
    if not await store.mark(session, user_id, entry_id, state.read):
        raise HTTPException(404, f"No inbox entry {entry_id}")
    await session.commit()
    await _announce(services, username)
    found = await store.entry(session, user_id, entry_id)
    if found is None:  # pruned in between
        raise HTTPException(404, f"No inbox entry {entry_id}")
    return found


@router.post("/read-all", response_model=Marked)
async def mark_all_read(
    username: Username,
    _owner: Owner,
    session: SessionDep,
    services: ServicesDep,
    body: ReadAll | None = None,
) -> Marked:
    """Mark every entry read (up to `before_id`, when given)."""
    user_id = await user_id_or_404(session, username)
    marked = await store.mark_all_read(session, user_id, body.before_id if body else None)
    await session.commit()
    if marked:
        await _announce(services, username)
    return Marked(marked=marked)


@router.get(
    "/stream",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}},
)
async def stream_inbox(
    username: Username,
    _owner: Owner,
    services: ServicesDep,
    last_event_id: Annotated[
        int | None,
        Header(alias="Last-Event-ID", ge=0, le=MAX_ID, description="Resume after this entry"),
    ] = None,
) -> EventSourceResponse:
    """New entries as they are stored (`event: notification`, `id`: the entry's id, `data`: the
    entry), the unread count after each change (`event: count`), a `: ping` comment every
    web.heartbeat seconds. With Last-Event-ID: every entry after it first."""
    sessionmaker = services.read_sessionmaker
    async with sessionmaker() as session:
        user_id = await user_id_or_404(session, username)
        start = last_event_id
        if start is None:
            start = (await store.last_change(session, user_id))[0]
    events = await services.relaying_inbox_events()

    async def generate() -> AsyncIterator[ServerSentEvent]:
        # Listening starts before anything is read: nothing stored from here on is missed. It
        # ends with the generator, which sse-starlette cancels when the client goes.
        with events.hub.listen(username) as listener:
            last = start
            new = changed = True
            while True:
                while new:
                    async with sessionmaker() as session:
                        batch = await store.entries(
                            session,
                            user_id,
                            store.Filters(after_id=last),
                            limit=STREAM_BATCH,
                            oldest_first=True,
                        )
                    for entry in batch:
                        yield ServerSentEvent(
                            entry.model_dump_json(), event="notification", id=str(entry.id)
                        )
                        last = entry.id
                    new = len(batch) == STREAM_BATCH
                    changed = changed or bool(batch)
                if changed:
                    async with sessionmaker() as session:
                        unread = await store.count(session, user_id, store.UNREAD)
                    yield ServerSentEvent(json.dumps({"unread": unread}), event="count")
                new, changed = await listener.wait()

    return EventSourceResponse(
        generate(),
        ping=services.settings.web.heartbeat,
        ping_message_factory=lambda: ServerSentEvent(comment="ping"),
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )

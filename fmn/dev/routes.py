"""Dev-only API routes (`fmn run` only): what the embedded run delivered to the logged-in user —
the mails the SMTP sink received, the IRC and Matrix messages the stand-in senders logged — and
what the run is made of, so the web app can show the mailbox and the sample log-ins."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from fmn.api.deps import CurrentUser, DirectoryDep, SettingsDep
from fmn.api.destinations import user_destinations
from fmn.dev.outbox import ChatMessage, Outbox
from fmn.rules.schema import Destination

PREFIX = "/api/v1/dev"
Limit = Annotated[int, Query(ge=1, le=500)]


class DevMail(BaseModel):
    id: int
    received_at: dt.datetime
    mail_from: str
    to: list[str]
    subject: str
    text: str
    # The mail's HTML part as sent: render it only sandboxed (an iframe without scripts).
    html: str | None


class DevLogin(BaseModel):
    username: str
    name: str
    email: str
    groups: list[str]


class DevInfo(BaseModel):
    # The parts replaced by embedded stand-ins: "database", "directory", "oidc", "email", ...
    embedded: list[str]
    logins: list[DevLogin]
    smtp_sink: str | None


async def _destinations(
    identity: CurrentUser, directory: DirectoryDep, settings: SettingsDep
) -> list[Destination]:
    """The logged-in user's addresses, from their directory entry."""
    user = await directory.get_user(identity.name)
    return user_destinations(identity.name, user, settings.directory.default_matrix_server)


MyDestinations = Annotated[list[Destination], Depends(_destinations)]


def make_dev_router(outbox: Outbox, info: DevInfo) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["dev"])

    @router.get("/info", response_model=DevInfo)
    async def dev_info() -> DevInfo:
        """What this embedded run is made of (no login needed)."""
        return info

    @router.get("/mail", response_model=list[DevMail])
    async def my_mail(mine: MyDestinations, limit: Limit = 50) -> list[DevMail]:
        """Mail the SMTP sink received for the logged-in user's addresses, newest first."""
        emails = [d.address for d in mine if d.protocol == "email"]
        return [
            DevMail(
                id=m.id,
                received_at=m.received_at,
                mail_from=m.mail_from,
                to=list(m.recipients),
                subject=m.subject,
                text=m.text,
                html=m.html,
            )
            for m in outbox.mail_to(emails)[:limit]
        ]

    @router.get("/chat", response_model=list[ChatMessage])
    async def my_chat(mine: MyDestinations, limit: Limit = 50) -> list[ChatMessage]:
        """IRC and Matrix messages logged for the logged-in user's nicks and ids, newest first."""
        pairs = [(d.protocol, d.address) for d in mine if d.protocol != "email"]
        return outbox.chat_to(pairs)[:limit]

    return router

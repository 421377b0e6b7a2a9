"""The message that proves a team destination is the team's: a short code sent to the list,
channel or room, which a sponsor then enters in the web app (docs/decisions.md, "Team
rules"). It travels as a work item on the send queue like any notification, so the senders'
flood limits, retries and delivery log apply to it too."""

from __future__ import annotations

import datetime as dt
import html
import secrets

from fmn.core.owners import team_owner
from fmn.sendqueue.workitem import (
    ChatContent,
    EmailContent,
    MessageInfo,
    Protocol,
    WorkItem,
    idempotency_key,
)

# No 0/O, 1/I/L: read off a chat line and typed again without a doubt.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
TOPIC = "fmn.team.destination.verify"


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalized_code(entered: str) -> str:
    """What a sponsor typed, as the code compares: case, spaces and dashes do not matter."""
    return "".join(entered.split()).replace("-", "").upper()


def verification_item(
    group: str, protocol: Protocol, address: str, code: str, public_url: str, now: dt.datetime
) -> WorkItem:
    """The work item carrying `code` to a team destination. `group` and `address` were checked
    by the API (account name; the protocol's address pattern)."""
    page = f"{public_url.rstrip('/')}/teams/{group}"
    summary = f"fmn verification code for the group {group}: {code} (enter it at {page})"
    message_id = f"verify-{group}-{secrets.token_hex(8)}"
    text = (
        f"Someone who sponsors the group {group} in Fedora Notifications asked to send the\n"
        f"group's notifications to {address}. To confirm, they enter this code at\n{page}:\n\n"
        f"    {code}\n\nIf this was not expected, ignore this message: nothing is sent here\n"
        "until the code is entered.\n"
    )
    markup = (
        f"<p>Fedora Notifications: the verification code for the group "
        f"<b>{html.escape(group)}</b> is <code>{code}</code>. A sponsor enters it at "
        f'<a href="{html.escape(page)}">{html.escape(page)}</a>.</p>'
    )
    return WorkItem(
        key=idempotency_key(message_id, protocol, address),
        protocol=protocol,
        address=address,
        user=team_owner(group),
        team=group,
        rules=[],
        message=MessageInfo(
            id=message_id, topic=TOPIC, sent_at=now, app_name="fmn", summary=summary
        ),
        email=EmailContent(
            subject=f"[Fedora Notifications] Verification code for the group {group}",
            text=text,
            html=markup,
        )
        if protocol == "email"
        else None,
        chat=ChatContent(text=summary, html=markup if protocol == "matrix" else None)
        if protocol != "email"
        else None,
    )

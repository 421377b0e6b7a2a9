"""The Matrix sender (matrix-nio, access token): one direct room per recipient
(fmn/senders/matrix_rooms.py); the recipient is invited again when they left. No sync at all:
rooms and memberships are asked for directly, and only when a recipient's membership was not
checked for a while."""

from __future__ import annotations

import hashlib
import html
import logging
import re
from typing import Any

import nio

from fmn.core.settings import MatrixSenderSettings
from fmn.notify import MATRIX_TEXT_LIMIT, line, line_html, matrix_html, one_line
from fmn.senders.digest import Digest
from fmn.senders.errors import PermanentError, TransientError
from fmn.senders.handler import Handler
from fmn.senders.matrix_rooms import DirectRooms, failure, is_error
from fmn.senders.matrix_token import TokenGuard, is_token_refusal
from fmn.senders.ratelimit import TokenBucket
from fmn.senders.state import SenderState
from fmn.sendqueue.workitem import WorkItem

log = logging.getLogger(__name__)

# Matrix user IDs (spec appendix "User Identifiers", historical characters allowed).
_USER_ID = re.compile(r"@[!-9;-~]{1,255}:[A-Za-z0-9.-]+(:[0-9]{1,5})?")
# A team's room (team rules): by id or alias, as fmn.rules.schema has them.
_ROOM = re.compile(r"[!#][\w_.=/+-]+:[\w.-]+(:\d+)?")
# The smallest sync that lists the rooms the bot is invited to.
_INVITES_ONLY = {
    "room": {"timeline": {"limit": 0}, "state": {"types": []}, "ephemeral": {"types": []}},
    "presence": {"types": []},
    "account_data": {"types": []},
}
DIGEST_ENTRIES = 100


def message_of(item: WorkItem) -> tuple[str, str | None]:
    """The body and HTML a notification is sent with. The guards at the frame's edge: a
    one-line body, HTML that Matrix clients render."""
    chat = item.chat
    text = one_line(chat.text if chat else line(item.message), MATRIX_TEXT_LIMIT)
    markup = matrix_html(chat.html) if chat and chat.html else None
    return text, markup


def txn_id(seed: str) -> str:
    """The Matrix transaction id of a notification (or digest): from the notification alone,
    not the room, so that a resend, into whichever room, carries the id it was first sent with
    (the homeserver drops a resend into the same room)."""
    return hashlib.sha256(seed.encode()).hexdigest()[:32]


class MatrixHandler(Handler):
    protocol = "matrix"

    def __init__(self, settings: MatrixSenderSettings, state: SenderState) -> None:
        self.settings = settings
        self.state = state
        self.client = nio.AsyncClient(
            settings.homeserver,
            settings.user_id,
            device_id="FMN",
            config=nio.AsyncClientConfig(
                # 429s and timeouts come back to us: the rate limit and the retries are ours.
                max_limit_exceeded=0,
                max_timeouts=0,
                request_timeout=settings.timeout,
            ),
        )
        self.client.access_token = settings.access_token
        self.client.user_id = settings.user_id
        self.limiter = TokenBucket(settings.messages_per_second, settings.burst)
        self.token = TokenGuard(settings.token_recheck)
        self.rooms = DirectRooms(
            self.client, self._call, state, settings.user_id, settings.membership_ttl
        )

    async def setup(self) -> None:
        """Check the access token. Neither a homeserver that is away (sends fail and are retried
        until it is back) nor a refused token (notifications are dead-lettered with that reason,
        and a gauge says so) stops the sender: a process that exits would be started again by
        its supervisor, and refused again, in a loop."""
        try:
            response = await self.client.whoami()
        except Exception as exc:
            log.warning("Matrix homeserver unreachable at start (%r); going on", exc)
            return
        if is_token_refusal(response):
            self.token.refused(response)
            return
        if is_error(response):
            log.warning("Matrix homeserver error at start (%s); going on", response)
            return
        self.token.accepted()
        log.info("logged in to Matrix as %s", response.user_id)

    async def stop(self) -> None:
        await self.client.close()

    def check_address(self, address: str) -> None:
        if not (_ROOM if address[:1] in "!#" else _USER_ID).fullmatch(address):
            raise PermanentError(f"not a valid Matrix user ID or room: {address[:100]!r}")

    async def send(self, item: WorkItem) -> None:
        text, markup = message_of(item)
        await self._deliver(item.address, text, markup, txn_seed=item.key)

    async def send_digest(self, digest: Digest) -> None:
        head = f"{digest.title} ({digest.why}):"
        shown = digest.items[:DIGEST_ENTRIES]
        rest = len(digest.items) - len(shown)
        lines = [f"- {one_line(line(i.message), MATRIX_TEXT_LIMIT)}" for i in shown]
        entries = "".join(f"<li>{line_html(i.message)}</li>" for i in shown)
        if rest:
            lines.append(f"… and {rest} more")
            entries += f"<li>… and {rest} more</li>"
        text = "\n".join([head, *lines])
        markup = matrix_html(f"<p>{html.escape(head)}</p><ul>{entries}</ul>")
        seed = "digest\n" + "\n".join(i.key for i in digest.items)
        await self._deliver(digest.address, text, markup, txn_seed=seed)

    # ---- delivery ---------------------------------------------------------------------------

    async def _deliver(self, user_id: str, text: str, markup: str | None, txn_seed: str) -> None:
        content: dict[str, Any] = {"msgtype": "m.text", "body": text}
        if markup:
            content.update(format="org.matrix.custom.html", formatted_body=markup)
        if user_id[:1] in "!#":
            await self._deliver_to_room(user_id, content, txn_seed)
            return
        stale: str | None = None
        for fresh_room in (False, True):
            room_id = await self.rooms.room_for(user_id, stale)
            response = await self._call(
                self.client.room_send, room_id, "m.room.message", content, txn_id(txn_seed)
            )
            if not is_error(response):
                return
            if response.status_code == "M_FORBIDDEN" and not fresh_room:
                # We are no longer in that room: make a new one.
                log.info("not in room %s any more; creating a new one for %s", room_id, user_id)
                stale = room_id
                continue
            raise failure("sending", response)

    async def _deliver_to_room(self, room: str, content: dict[str, Any], txn_seed: str) -> None:
        """A team's room: the bot joins it only when invited there (never a room it merely
        could join), then speaks in it like anyone in it."""
        room_id = room
        if room.startswith("#"):
            resolved = await self._call(self.client.room_resolve_alias, room)
            if is_error(resolved):
                raise failure(f"resolving {room}", resolved)
            room_id = resolved.room_id
        for joined in (False, True):
            response = await self._call(
                self.client.room_send, room_id, "m.room.message", content, txn_id(txn_seed)
            )
            if not is_error(response):
                return
            if response.status_code != "M_FORBIDDEN" or joined:
                raise failure(f"sending to {room}", response)
            await self._join_if_invited(room, room_id)

    async def _join_if_invited(self, room: str, room_id: str) -> None:
        sync = await self._call(self.client.sync, timeout=0, sync_filter=_INVITES_ONLY)
        if is_error(sync):
            raise failure("reading invitations", sync)
        if room_id not in sync.rooms.invite:
            raise PermanentError(
                f"{self.settings.user_id} is not in {room} and not invited: invite it first"
            )
        joined = await self._call(self.client.join, room_id)
        if is_error(joined):
            raise failure(f"joining {room}", joined)
        log.info("joined %s on invitation", room)

    async def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        """One request within our rate limit; a 429 pauses all sending for as long as asked."""
        while True:
            self.token.check()
            await self.limiter.acquire()
            try:
                response = await method(*args, **kwargs)
            except (OSError, TimeoutError, nio.exceptions.LocalProtocolError) as exc:
                raise TransientError(f"Matrix homeserver unreachable: {exc!r}") from exc
            except Exception as exc:  # aiohttp's client errors
                if type(exc).__module__.startswith("aiohttp"):
                    raise TransientError(f"Matrix homeserver unreachable: {exc!r}") from exc
                raise
            if is_error(response) and response.status_code == "M_LIMIT_EXCEEDED":
                wait = (getattr(response, "retry_after_ms", None) or 5000) / 1000
                log.info("Matrix rate limit hit; waiting %.1f s", wait)
                self.limiter.pause(wait)
                continue
            if is_token_refusal(response):
                raise self.token.refused(response)
            self.token.accepted()
            return response

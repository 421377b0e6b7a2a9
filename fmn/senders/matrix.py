"""The Matrix sender (matrix-nio, access token): one direct room per recipient, remembered in
Redis across restarts; the recipient is invited again when they left. No sync at all: rooms and
memberships are asked for directly, and only when a recipient's membership was not checked for
a while."""

from __future__ import annotations

import hashlib
import html
import logging
import re
import time
from typing import Any

import nio

from fmn.core.settings import MatrixSenderSettings
from fmn.notify import MATRIX_TEXT_LIMIT, line, line_html, matrix_html, one_line
from fmn.senders.digest import Digest
from fmn.senders.errors import PermanentError, TransientError
from fmn.senders.handler import Handler
from fmn.senders.ratelimit import TokenBucket
from fmn.senders.state import SenderState
from fmn.sendqueue.workitem import WorkItem

log = logging.getLogger(__name__)

# Matrix user IDs (spec appendix "User Identifiers", historical characters allowed).
_USER_ID = re.compile(r"@[!-9;-~]{1,255}:[A-Za-z0-9.-]+(:[0-9]{1,5})?")
DIGEST_ENTRIES = 100


def _room_key(user_id: str) -> str:
    return f"matrix:room:{user_id}"


def _is_error(response: Any) -> bool:
    return isinstance(response, nio.ErrorResponse)


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
        self._checked: dict[str, float] = {}  # recipient -> when their membership was checked

    async def setup(self) -> None:
        """Check the access token. A homeserver that is away is not fatal (sends fail, and are
        retried, until it is back); a refused token is."""
        try:
            response = await self.client.whoami()
        except Exception as exc:
            log.warning("Matrix homeserver unreachable at start (%r); going on", exc)
            return
        if _is_error(response):
            if response.status_code in ("M_UNKNOWN_TOKEN", "M_MISSING_TOKEN", "M_FORBIDDEN"):
                raise RuntimeError(f"Matrix access token refused: {response}")
            log.warning("Matrix homeserver error at start (%s); going on", response)
            return
        log.info("logged in to Matrix as %s", response.user_id)

    async def stop(self) -> None:
        await self.client.close()

    def check_address(self, address: str) -> None:
        if not _USER_ID.fullmatch(address):
            raise PermanentError(f"not a valid Matrix user ID: {address[:100]!r}")

    async def send(self, item: WorkItem) -> None:
        chat = item.chat
        # The guards at the frame's edge: a one-line body, HTML that Matrix clients render.
        text = one_line(chat.text if chat else line(item.message), MATRIX_TEXT_LIMIT)
        markup = matrix_html(chat.html) if chat and chat.html else None
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
        for fresh_room in (False, True):
            room_id = await self._room_for(user_id, fresh=fresh_room)
            # The same transaction id for the same notification: the homeserver drops a resend.
            txn = hashlib.sha256(f"{room_id}\n{txn_seed}".encode()).hexdigest()[:32]
            response = await self._call(
                self.client.room_send, room_id, "m.room.message", content, txn
            )
            if not _is_error(response):
                return
            if response.status_code == "M_FORBIDDEN" and not fresh_room:
                # We are no longer in that room: make a new one.
                log.info("not in room %s any more; creating a new one for %s", room_id, user_id)
                continue
            raise _failure("sending", response)

    async def _room_for(self, user_id: str, fresh: bool) -> str:
        room_id = None if fresh else await self.state.get_value(_room_key(user_id))
        if room_id is None:
            return await self._create_room(user_id)
        if (
            time.monotonic() - self._checked.get(user_id, float("-inf"))
            > self.settings.membership_ttl
        ):
            if not await self._ensure_invited(room_id, user_id):
                return await self._create_room(user_id)
            self._checked[user_id] = time.monotonic()
        return room_id

    async def _create_room(self, user_id: str) -> str:
        # Synapse creates the room even when the invitee does not exist: ask first.
        profile = await self._call(self.client.get_profile, user_id)
        if _is_error(profile) and _http_status(profile) == 404:
            raise PermanentError(f"no such Matrix user: {user_id}")
        response = await self._call(
            self.client.room_create,
            is_direct=True,
            preset=nio.RoomPreset.trusted_private_chat,
            invite=[user_id],
            name="Fedora Notifications",
        )
        if _is_error(response):
            raise _failure("creating a room", response)
        await self.state.set_value(_room_key(user_id), response.room_id)
        self._checked[user_id] = time.monotonic()
        log.info("created room %s for %s", response.room_id, user_id)
        return str(response.room_id)

    async def _ensure_invited(self, room_id: str, user_id: str) -> bool:
        """Invite the recipient again if they left; False if the room is no use any more."""
        state = await self._call(
            self.client.room_get_state_event, room_id, "m.room.member", user_id
        )
        if _is_error(state):
            if state.status_code == "M_FORBIDDEN":  # we are not in the room
                return False
            if state.status_code != "M_NOT_FOUND":
                raise _failure("reading the room membership", state)
            membership = None
        else:
            membership = state.content.get("membership")
        if membership in ("join", "invite"):
            return True
        if membership == "ban":
            return False
        invite = await self._call(self.client.room_invite, room_id, user_id)
        if _is_error(invite):
            raise _failure("inviting", invite)
        log.info("invited %s again to %s", user_id, room_id)
        return True

    async def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        """One request within our rate limit; a 429 pauses all sending for as long as asked."""
        while True:
            await self.limiter.acquire()
            try:
                response = await method(*args, **kwargs)
            except (OSError, TimeoutError, nio.exceptions.LocalProtocolError) as exc:
                raise TransientError(f"Matrix homeserver unreachable: {exc!r}") from exc
            except Exception as exc:  # aiohttp's client errors
                if type(exc).__module__.startswith("aiohttp"):
                    raise TransientError(f"Matrix homeserver unreachable: {exc!r}") from exc
                raise
            if _is_error(response) and response.status_code == "M_LIMIT_EXCEEDED":
                wait = (getattr(response, "retry_after_ms", None) or 5000) / 1000
                log.info("Matrix rate limit hit; waiting %.1f s", wait)
                self.limiter.pause(wait)
                continue
            return response


def _failure(doing: str, response: Any) -> Exception:
    code = getattr(response, "status_code", None) or "unknown"
    message = f"Matrix error while {doing}: {code} {getattr(response, 'message', '')}".strip()
    # Client errors (forbidden, unknown user, bad request) will not heal by waiting.
    if code in ("M_FORBIDDEN", "M_NOT_FOUND", "M_UNKNOWN", "M_BAD_JSON", "M_INVALID_PARAM"):
        return PermanentError(message)
    return TransientError(message)


def _http_status(response: Any) -> int | None:
    transport = getattr(response, "transport_response", None)
    return getattr(transport, "status", None)

"""The Matrix sender's direct room per recipient: remembered in Redis, listed in the bot's
`m.direct` account data as Matrix clients keep it, and made at most once per recipient.

A room is made only when neither remembers one for the recipient that the bot is still in. A
`createRoom` whose answer never came (a timeout, the homeserver gone mid-request, the sender
killed) may have made the room all the same: it leaves a mark in Redis, and the next look for
that recipient searches the bot's joined rooms for it before making another. Room look-ups and
creations of one recipient run one at a time (a notification and a digest may want the same
new room at once)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import nio

from fmn.senders.errors import PermanentError, TransientError
from fmn.senders.state import SenderState

log = logging.getLogger(__name__)

# One request through the sender's rate limit and token guard (MatrixHandler._call).
Call = Callable[..., Awaitable[Any]]
# Client errors that will not heal by waiting.
_PERMANENT = ("M_FORBIDDEN", "M_NOT_FOUND", "M_UNKNOWN", "M_BAD_JSON", "M_INVALID_PARAM")


def is_error(response: Any) -> bool:
    return isinstance(response, nio.ErrorResponse)


def failure(doing: str, response: Any) -> Exception:
    code = getattr(response, "status_code", None) or "unknown"
    message = f"Matrix error while {doing}: {code} {getattr(response, 'message', '')}".strip()
    if code in _PERMANENT:
        return PermanentError(message)
    return TransientError(message)


def http_status(response: Any) -> int | None:
    transport = getattr(response, "transport_response", None)
    return getattr(transport, "status", None)


def room_key(user_id: str) -> str:
    return f"matrix:room:{user_id}"


def creating_key(user_id: str) -> str:
    """Set while a `createRoom` for the recipient has no answer yet."""
    return f"matrix:creating:{user_id}"


class DirectRooms:
    def __init__(
        self,
        client: nio.AsyncClient,
        call: Call,
        state: SenderState,
        bot: str,
        membership_ttl: float,
    ) -> None:
        self.client = client
        self.call = call
        self.state = state
        self.bot = bot
        self.membership_ttl = membership_ttl
        self._checked: dict[str, float] = {}  # recipient -> when their membership was checked
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._direct_lock = asyncio.Lock()  # m.direct is read, changed and written whole

    def _lock(self, user_id: str) -> asyncio.Lock:
        lock = self._locks.get(user_id)
        if lock is None:
            lock = self._locks[user_id] = asyncio.Lock()
        return lock

    async def room_for(self, user_id: str, stale: str | None = None) -> str:
        """The recipient's room; `stale` is a room the bot turned out not to be in."""
        async with self._lock(user_id):
            room_id = await self.state.get_value(room_key(user_id))
            if room_id is not None and room_id != stale:
                if stale is None and self._membership_due(user_id):
                    if not await self.ensure_invited(room_id, user_id):
                        return await self._replace(user_id, f"{room_id} is no use any more")
                    self._checked[user_id] = time.monotonic()
                return room_id
            if stale is not None:
                return await self._replace(user_id, "the bot is not in its room any more")
            found = await self._find(user_id)
            if found is not None:
                await self.state.set_value(room_key(user_id), found)
                self._checked[user_id] = time.monotonic()
                log.info("found room %s for %s again (none remembered in Redis)", found, user_id)
                return found
            return await self._create(user_id, "no room yet")

    def _membership_due(self, user_id: str) -> bool:
        checked = self._checked.get(user_id, float("-inf"))
        return time.monotonic() - checked > self.membership_ttl

    async def _replace(self, user_id: str, why: str) -> str:
        # A room made for this recipient whose answer was lost is a room worth taking.
        if await self.state.get_value(creating_key(user_id)) is not None:
            found = await self._find_orphan(user_id, await self._direct())
            if found is not None:
                await self._remember(user_id, found)
                return found
        return await self._create(user_id, why)

    # ---- looking a room up --------------------------------------------------------------

    async def _find(self, user_id: str) -> str | None:
        """A room the bot is in with the recipient: one `m.direct` lists, or (after a
        `createRoom` with no answer) one the bot made for them that nothing lists yet."""
        direct = await self._direct()
        for room_id in reversed(direct.get(user_id, [])):
            if await self.ensure_invited(room_id, user_id):
                return room_id
        if await self.state.get_value(creating_key(user_id)) is None:
            return None
        found = await self._find_orphan(user_id, direct)
        if found is not None:
            await self._remember_direct(user_id, found)
        await self.state.delete_value(creating_key(user_id))
        return found

    async def _find_orphan(self, user_id: str, direct: dict[str, list[str]]) -> str | None:
        joined = await self.call(self.client.joined_rooms)
        if is_error(joined):
            raise failure("listing the bot's rooms", joined)
        listed = {room for rooms in direct.values() for room in rooms}
        for room_id in joined.rooms:
            if room_id not in listed and await self._is_direct_room_for(room_id, user_id):
                log.info("room %s was made for %s though no answer said so", room_id, user_id)
                return str(room_id)
        return None

    async def _is_direct_room_for(self, room_id: str, user_id: str) -> bool:
        """Made by the bot, with nobody in it or invited but the bot and the recipient: never
        a team's room, which the bot joined on invitation."""
        state = await self.call(self.client.room_get_state, room_id)
        if is_error(state):
            return False
        creator = None
        members: set[str] = set()
        for event in state.events:
            if event.get("type") == "m.room.create":
                creator = event.get("sender")
            elif event.get("type") == "m.room.member":
                if (event.get("content") or {}).get("membership") in ("join", "invite"):
                    members.add(str(event.get("state_key")))
        return creator == self.bot and members == {self.bot, user_id}

    async def ensure_invited(self, room_id: str, user_id: str) -> bool:
        """Invite the recipient again if they left; False if the room is no use any more."""
        state = await self.call(self.client.room_get_state_event, room_id, "m.room.member", user_id)
        if is_error(state):
            if state.status_code == "M_FORBIDDEN":  # we are not in the room
                return False
            if state.status_code != "M_NOT_FOUND":
                raise failure("reading the room membership", state)
            membership = None
        else:
            membership = state.content.get("membership")
        if membership in ("join", "invite"):
            return True
        if membership == "ban":
            return False
        invite = await self.call(self.client.room_invite, room_id, user_id)
        if is_error(invite):
            raise failure("inviting", invite)
        log.info("invited %s again to %s", user_id, room_id)
        return True

    # ---- making a room ------------------------------------------------------------------

    async def _create(self, user_id: str, why: str) -> str:
        # Synapse creates the room even when the invitee does not exist: ask first.
        profile = await self.call(self.client.get_profile, user_id)
        if is_error(profile) and http_status(profile) == 404:
            raise PermanentError(f"no such Matrix user: {user_id}")
        # Marked before asking: if the answer is lost, the room may exist all the same.
        await self.state.set_value(creating_key(user_id), str(time.time()))
        response = await self.call(
            self.client.room_create,
            is_direct=True,
            preset=nio.RoomPreset.trusted_private_chat,
            invite=[user_id],
            name="Fedora Notifications",
        )
        if is_error(response):
            if http_status(response) in (400, 403):  # refused: no room was made
                await self.state.delete_value(creating_key(user_id))
            raise failure("creating a room", response)
        await self._remember(user_id, str(response.room_id))
        log.info("created room %s for %s (%s)", response.room_id, user_id, why)
        return str(response.room_id)

    async def _remember(self, user_id: str, room_id: str) -> None:
        await self.state.set_value(room_key(user_id), room_id)
        self._checked[user_id] = time.monotonic()
        await self._remember_direct(user_id, room_id)
        await self.state.delete_value(creating_key(user_id))

    # ---- m.direct -----------------------------------------------------------------------

    def _direct_path(self) -> str:
        return f"/_matrix/client/v3/user/{quote(self.bot, safe='')}/account_data/m.direct"

    async def _direct(self) -> dict[str, list[str]]:
        response = await self.call(self._account_data, "GET")
        if is_error(response):
            if response.status_code == "M_NOT_FOUND":
                return {}
            raise failure("reading the bot's direct rooms", response)
        return {
            str(user): [str(r) for r in rooms]
            for user, rooms in response.items()
            if isinstance(rooms, list)
        }

    async def _remember_direct(self, user_id: str, room_id: str) -> None:
        """Add the room to `m.direct`; the room is remembered in Redis already, so a failure
        here costs only the look-up after a loss of Redis, and does not fail the send."""
        try:
            async with self._direct_lock:
                direct = await self._direct()
                if room_id in direct.get(user_id, []):
                    return
                direct[user_id] = [*direct.get(user_id, []), room_id]
                response = await self.call(self._account_data, "PUT", direct)
                if is_error(response):
                    raise failure("writing the bot's direct rooms", response)
        except (TransientError, PermanentError) as exc:
            log.warning("could not list room %s for %s in m.direct: %s", room_id, user_id, exc)

    async def _account_data(self, method: str, body: Any = None) -> Any:
        """The bot's m.direct account data (matrix-nio has no call for account data): the
        content as a dict, or a nio ErrorResponse."""
        response = await self.client.send(
            method,
            self._direct_path(),
            None if body is None else json.dumps(body),
            headers={
                "Authorization": f"Bearer {self.client.access_token}",
                "Content-Type": "application/json",
            },
        )
        try:
            data = await response.json(content_type=None)
        except ValueError:
            data = None
        if response.status >= 400 or not isinstance(data, dict):
            data = data if isinstance(data, dict) else {}
            error = nio.ErrorResponse(
                str(data.get("error", "")),
                str(data.get("errcode") or response.status),
                data.get("retry_after_ms"),
            )
            error.transport_response = response
            return error
        return data

"""Web Push to a user's browsers after an entry is stored (pywebpush: RFC 8030 delivery,
RFC 8291 payload encryption, RFC 8292 VAPID). A subscription the push service says is gone
(404, 410) is deleted; any other failure is logged and forgotten: the entry is in the inbox
already, and the push only tells about it."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any

import aiohttp
from aiohttp.abc import ResolveResult
from py_vapid import Vapid02
from pywebpush import WebPushException, webpush_async
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fmn.core.settings import Settings
from fmn.db.models import PushSubscription
from fmn.inbox.public_hosts import RefusedHost, is_public
from fmn.inbox.vapid import load_key
from fmn.notify import cut
from fmn.sendqueue.workitem import WorkItem

log = logging.getLogger(__name__)
GONE = (404, 410)
BODY_LIMIT = 500  # push services take about 4 kB of payload; the app shows a few lines


def payload(entry_id: int, item: WorkItem, inbox_url: str) -> str:
    """What the service worker receives: {"title", "body", "url", "id"}."""
    content = item.web
    return json.dumps(
        {
            "title": content.subject if content else item.message.summary,
            "body": cut(content.text if content else item.message.summary, BODY_LIMIT),
            "url": item.message.url or inbox_url,
            "id": entry_id,
        }
    )


class PublicOnlyConnector(aiohttp.TCPConnector):
    """A connector that connects to public addresses only: each host (an endpoint's, or a
    redirect's) is resolved, and its addresses that are not public are left out before any
    connection is made, so no later lookup can swap them in."""

    async def _resolve_host(
        self, host: str, port: int, traces: Sequence[Any] | None = None
    ) -> list[ResolveResult]:
        # aiohttp's own step (IP literals included), then the filter: the connection is made to
        # what this returns.
        found = await super()._resolve_host(host, port, traces=traces)
        public = [result for result in found if is_public(result["host"])]
        if not public:
            addresses = sorted({result["host"] for result in found})
            raise RefusedHost(f"{host} has no public address (only {addresses})")
        return public


class WebPusher:
    def __init__(
        self, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], vapid: Vapid02
    ) -> None:
        self.web = settings.web
        self.inbox_url = settings.public_url.rstrip("/") + "/inbox"
        self.sessionmaker = sessionmaker
        self.vapid = vapid
        self._http: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> WebPusher | None:
        """None when Web Push is not configured (no VAPID key)."""
        if not settings.web.vapid_private_key:
            log.info("web.vapid_private_key is not set: no Web Push")
            return None
        return cls(settings, sessionmaker, load_key(settings.web.vapid_private_key))

    async def push(self, user_id: int, entry_id: int, item: WorkItem) -> None:
        async with self.sessionmaker() as session:
            subscriptions = list(
                await session.scalars(
                    select(PushSubscription).where(PushSubscription.user_id == user_id)
                )
            )
        if not subscriptions:
            return
        data = payload(entry_id, item, self.inbox_url)
        await asyncio.gather(*(self._push_one(s, data) for s in subscriptions))

    async def _push_one(self, subscription: PushSubscription, data: str) -> None:
        if self._http is None:
            allowed = self.web.push_allow_private_hosts
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector() if allowed else PublicOnlyConnector()
            )
        info: dict[str, Any] = {
            "endpoint": subscription.endpoint,
            "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
        }
        timeout: Any = aiohttp.ClientTimeout(total=self.web.push_timeout)
        try:
            await webpush_async(
                info,
                data,
                vapid_private_key=self.vapid,
                vapid_claims={"sub": self.web.vapid_subject},  # a new dict: it is filled in
                ttl=self.web.push_ttl,
                timeout=timeout,
                aiohttp_session=self._http,
            )
        except WebPushException as exc:
            status = getattr(exc.response, "status", None)
            if status in GONE:
                log.info("push subscription %s is gone (%s): removed", subscription.id, status)
                async with self.sessionmaker.begin() as session:
                    await session.execute(
                        delete(PushSubscription).where(PushSubscription.id == subscription.id)
                    )
                return
            log.warning("push to subscription %s failed: %s", subscription.id, status or exc)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            refused = getattr(exc, "os_error", None)  # PublicOnlyConnector's, if it refused
            if isinstance(refused, RefusedHost):
                # Kept: a push service's name pointing inward is a misconfiguration or an
                # attack, and the log says which subscription.
                log.warning(
                    "push to subscription %s refused, not sent: %s", subscription.id, refused
                )
            else:
                log.warning("push to subscription %s failed: %r", subscription.id, exc)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

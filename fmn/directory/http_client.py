"""JSON over HTTP for the directory clients: timeouts, retries with backoff, and one rule.

The rule (FMN 3 #1064): a look-up that cannot be answered raises DirectoryUnavailable; it never
turns into an empty answer. A 404 is an answer ("no such user/project") and comes back as None.
Transport errors and 5xx are retried with exponential backoff; other 4xx are not (retrying a
refused request cannot help) but still raise DirectoryUnavailable.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from fmn.directory.base import DirectoryUnavailable

log = logging.getLogger(__name__)


class _ServerError(Exception):
    """A 5xx answer: worth another try."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"{response.request.url} answered {response.status_code}")


class JSONClient:
    """GETs JSON documents from one service, under its base URL."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 10.0,
        auth: httpx.Auth | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        # Growing waits, with jitter so that replicas do not retry in step.
        self._wait = wait_exponential(multiplier=backoff, max=max_backoff) + wait_random(0, backoff)
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout),
            auth=auth,
            transport=transport,
            headers={"Accept": "application/json"},
            # A service moved to https, or Werkzeug's 308 for a missing trailing slash, is
            # still the same answer (httpx drops credentials on a redirect to another host).
            follow_redirects=True,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Any | None:
        """The decoded JSON body, or None on 404. Raises DirectoryUnavailable otherwise."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=self._wait,
            retry=retry_if_exception_type((httpx.TransportError, _ServerError)),
            reraise=False,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._get_once(path, params)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise DirectoryUnavailable(
                f"GET {self.base_url}{path}: {last!r} after {self.retries + 1} attempts"
            ) from last
        raise AssertionError("unreachable")  # pragma: no cover

    async def _get_once(self, path: str, params: dict[str, Any] | None) -> Any | None:
        try:
            response = await self._client.get(path, params=params)
        except httpx.TransportError as exc:
            log.warning("directory look-up GET %s%s failed: %r", self.base_url, path, exc)
            raise
        if response.status_code == 404:
            return None
        if response.status_code >= 500:
            log.warning("directory look-up %s answered %d", response.url, response.status_code)
            raise _ServerError(response)
        if response.status_code != 200:
            raise DirectoryUnavailable(f"{response.url} answered {response.status_code}")
        try:
            return response.json()
        except ValueError as exc:
            raise DirectoryUnavailable(f"{response.url} answered invalid JSON") from exc

"""Bearer tokens from Ipsilon or any OpenID Connect provider.

The provider's endpoints come from its discovery document. A token is checked by RFC 7662
introspection, by the userinfo endpoint, or both (`oidc.token_check`); the resulting identity
(username, groups, expiry) is kept in the shared cache, keyed by a hash of the token, until the
token expires, so the provider is asked once per token and not once per request. A small
in-process memo in front of the shared cache saves the cache round trip on busy tokens.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from cashews import Cache

from fmn.core.settings import OIDCSettings

log = logging.getLogger(__name__)

CACHE_PREFIX = "fmn:api:identity:v1:"
MAX_TOKEN_LENGTH = 8192
# The in-process memo: how many identities, and for how long at most (seconds).
MEMO_SIZE = 4096
MEMO_TTL = 30.0


class AuthError(Exception):
    """The token is missing, invalid or expired: 401."""


class ProviderUnavailable(Exception):
    """The identity provider cannot be asked right now: 503."""


@dataclass(frozen=True)
class Identity:
    name: str
    groups: tuple[str, ...]
    expires_at: float  # Unix time
    is_admin: bool = False

    def to_json(self) -> str:
        return json.dumps({"name": self.name, "groups": list(self.groups), "exp": self.expires_at})

    @classmethod
    def from_json(cls, raw: str | bytes, admin_groups: frozenset[str]) -> Identity:
        data = json.loads(raw)
        groups = tuple(data["groups"])
        return cls(data["name"], groups, float(data["exp"]), bool(admin_groups & set(groups)))


@dataclass(frozen=True)
class Endpoints:
    introspection: str | None
    userinfo: str | None


def token_key(token: str) -> str:
    return CACHE_PREFIX + hashlib.sha256(token.encode()).hexdigest()


def unverified_jwt_expiry(token: str) -> float | None:
    """A JWT's `exp`, read without checking the signature: used only to cache a token that the
    provider accepted no longer than it lives."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        exp = payload.get("exp")
    except (ValueError, AttributeError):
        return None
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


OnNewIdentity = Callable[[Identity], Awaitable[None]]


class TokenVerifier:
    def __init__(
        self, settings: OIDCSettings, cache: Cache, http: httpx.AsyncClient | None = None
    ) -> None:
        self.settings = settings
        self.cache = cache
        self.http = http or httpx.AsyncClient(timeout=settings.timeout)
        self.admin_groups = frozenset(settings.admin_groups)
        self._endpoints: Endpoints | None = None
        self._discovery_lock = asyncio.Lock()
        self._memo: OrderedDict[str, tuple[float, Identity]] = OrderedDict()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def identify(self, token: str, on_new: OnNewIdentity | None = None) -> Identity:
        """The identity a token stands for. `on_new` runs once per token, before the identity is
        cached (first login: create the user); if it fails, nothing is cached."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise AuthError("Invalid token")
        remembered = self.remembered(token)
        if remembered is not None:
            return remembered
        key = token_key(token)
        now = time.time()
        raw = await self.cache.get(key)
        if raw is not None:
            identity = Identity.from_json(raw, self.admin_groups)
        else:
            identity = await self._check(token, now)
            if on_new is not None:
                await on_new(identity)
            await self.cache.set(key, identity.to_json(), expire=identity.expires_at - now)
        if identity.expires_at <= now:
            raise AuthError("Token expired")
        self._remember(key, identity, now)
        return identity

    def remembered(self, token: str) -> Identity | None:
        """The identity of a token this process checked (or found in the shared cache) less
        than MEMO_TTL seconds ago and that has not expired; None otherwise."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        memo = self._memo.get(token_key(token))
        if memo is not None and memo[0] > time.time():
            return memo[1]
        return None

    def _remember(self, key: str, identity: Identity, now: float) -> None:
        self._memo[key] = (min(identity.expires_at, now + MEMO_TTL), identity)
        self._memo.move_to_end(key)
        while len(self._memo) > MEMO_SIZE:
            self._memo.popitem(last=False)

    async def endpoints(self) -> Endpoints:
        if self._endpoints is None:
            async with self._discovery_lock:
                if self._endpoints is None:
                    url = self.settings.provider_url.rstrip("/")
                    doc = await self._json("GET", f"{url}/.well-known/openid-configuration")
                    self._endpoints = Endpoints(
                        introspection=_str_or_none(doc.get("introspection_endpoint")),
                        userinfo=_str_or_none(doc.get("userinfo_endpoint")),
                    )
        return self._endpoints

    async def _check(self, token: str, now: float) -> Identity:
        mode = self.settings.token_check
        endpoints = await self.endpoints()
        name: str | None = None
        groups: Any = None
        expires_at: float | None = None
        if mode in ("introspection", "both"):
            if endpoints.introspection is None:
                raise ProviderUnavailable("the provider has no introspection endpoint")
            info = await self._introspect(endpoints.introspection, token)
            name = _str_or_none(info.get(self.settings.introspection_username_claim))
            groups = info.get(self.settings.groups_claim)
            exp = info.get("exp")
            if isinstance(exp, int | float) and not isinstance(exp, bool):
                expires_at = float(exp)
        if mode in ("userinfo", "both") or groups is None:
            if endpoints.userinfo is None:
                raise ProviderUnavailable("the provider has no userinfo endpoint")
            info = await self._userinfo(endpoints.userinfo, token)
            name = name or _str_or_none(info.get(self.settings.userinfo_username_claim))
            groups = info.get(self.settings.groups_claim)
        if not name:
            raise AuthError("The token names no user")
        if expires_at is None:
            jwt_exp = unverified_jwt_expiry(token)
            expires_at = now + self.settings.identity_ttl
            if jwt_exp is not None:
                expires_at = min(expires_at, jwt_exp)
        if expires_at <= now:
            raise AuthError("Token expired")
        group_names = tuple(g for g in groups or () if isinstance(g, str))
        return Identity(name, group_names, expires_at, bool(self.admin_groups & set(group_names)))

    async def _introspect(self, url: str, token: str) -> dict[str, Any]:
        info = await self._json(
            "POST",
            url,
            data={"token": token, "token_type_hint": "access_token"},
            auth=(self.settings.client_id, self.settings.client_secret),
        )
        if info.get("active") is not True:
            raise AuthError("Invalid or expired token")
        return info

    async def _userinfo(self, url: str, token: str) -> dict[str, Any]:
        return await self._json(
            "GET", url, headers={"Authorization": f"Bearer {token}"}, token_call=True
        )

    async def _json(
        self, method: str, url: str, *, token_call: bool = False, **kwargs: Any
    ) -> dict[str, Any]:
        try:
            response = await self.http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            log.warning("identity provider unreachable (%s %s): %r", method, url, exc)
            raise ProviderUnavailable("The identity provider is unreachable") from None
        if token_call and response.status_code in (400, 401, 403):
            raise AuthError("Invalid or expired token")
        if response.status_code != 200:
            log.warning("identity provider answered %s to %s %s", response.status_code, method, url)
            raise ProviderUnavailable("The identity provider failed")
        try:
            data = response.json()
        except ValueError:
            raise ProviderUnavailable("The identity provider sent no JSON") from None
        if not isinstance(data, dict):
            raise ProviderUnavailable("The identity provider sent no JSON object")
        return data


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None

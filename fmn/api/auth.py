"""Bearer tokens from Ipsilon or any OpenID Connect provider.

The provider's endpoints come from its discovery document. A token is checked by RFC 7662
introspection, by the userinfo endpoint, or both (`oidc.token_check`); introspection also
tells which client application the token was issued to, which must be an allowed one. The
resulting identity (username, groups, expiry) is trusted for at most `identity_ttl` seconds
and never past the token's expiry, then the provider is asked again: that bounds how long a
revoked token keeps working. It is kept in an in-process memo in front of the shared cache
(keyed by a hash of the token), so a token is checked once per TTL, and each process reads
the shared cache once per TTL.

A token the provider refuses is remembered as refused for `refused_ttl` seconds (in the memo
and the shared cache, where it also replaces the token's identity at once), and each client
address may have only so many tokens checked by the provider per minute: a flood of unknown
tokens cannot turn into a flood of calls to the provider.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from cachetools import TLRUCache, TTLCache
from cashews import Cache

from fmn.api.limits import RateLimiter
from fmn.core.settings import OIDCSettings

log = logging.getLogger(__name__)

CACHE_PREFIX = "fmn:api:identity:v2:"
MAX_TOKEN_LENGTH = 8192
# RFC 6750's b64token: anything else in a bearer token is refused before any look-up.
TOKEN_SYNTAX = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# Identities (and refusals) the in-process memo holds at most.
MEMO_SIZE = 4096
RATE_SCOPE = "token-check"


class AuthError(Exception):
    """The token is missing, invalid or expired: 401."""


class ProviderUnavailable(Exception):
    """The identity provider cannot be asked right now: 503."""


@dataclass(frozen=True)
class Identity:
    name: str
    groups: tuple[str, ...]
    expires_at: float  # Unix time: the token's expiry
    is_admin: bool = False
    # Unix time until which this identity is trusted without asking the provider again.
    valid_until: float = 0.0

    def to_json(self) -> str:
        return json.dumps(
            {
                "name": self.name,
                "groups": list(self.groups),
                "exp": self.expires_at,
                "until": self.valid_until,
            }
        )

    @classmethod
    def from_json(cls, raw: str | bytes, admin_groups: frozenset[str]) -> Identity:
        data = json.loads(raw)
        groups = tuple(data["groups"])
        return cls(
            data["name"],
            groups,
            float(data["exp"]),
            bool(admin_groups & set(groups)),
            float(data["until"]),
        )


@dataclass(frozen=True)
class Endpoints:
    introspection: str | None
    userinfo: str | None


def token_key(token: str) -> str:
    return CACHE_PREFIX + hashlib.sha256(token.encode()).hexdigest()


def well_formed(token: str) -> bool:
    return 0 < len(token) <= MAX_TOKEN_LENGTH and TOKEN_SYNTAX.fullmatch(token) is not None


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
        self,
        settings: OIDCSettings,
        cache: Cache,
        limiter: RateLimiter,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = settings
        self.cache = cache
        self.limiter = limiter
        self.http = http or httpx.AsyncClient(timeout=settings.timeout)
        self.admin_groups = frozenset(settings.admin_groups)
        self.allowed_clients = frozenset([settings.frontend_client_id, *settings.allowed_clients])
        self._endpoints: Endpoints | None = None
        self._discovery_lock = asyncio.Lock()
        # Token hash -> identity, each kept until its own `valid_until`.
        self._memo: TLRUCache[str, Identity] = TLRUCache(
            maxsize=MEMO_SIZE, ttu=_trusted_until, timer=time.time
        )
        # Token hash -> why the provider refused it.
        self._refused: TTLCache[str, str] = TTLCache(maxsize=MEMO_SIZE, ttl=settings.refused_ttl)
        # Token hash -> the provider check under way (concurrent requests share it).
        self._checks: dict[str, asyncio.Task[Identity]] = {}

    async def aclose(self) -> None:
        await self.http.aclose()

    async def identify(
        self, token: str, on_new: OnNewIdentity | None = None, address: str = "unknown"
    ) -> Identity:
        """The identity a token stands for. `on_new` runs once per check by the provider,
        before the identity is cached (first login: create the user); if it fails, nothing is
        cached. `address` is the client's, counted when the provider must be asked."""
        if not well_formed(token):
            raise AuthError("Malformed bearer token")
        key = token_key(token)
        identity = self._memo.get(key)
        if identity is not None:
            return identity
        refused = self._refused.get(key)
        if refused is not None:
            raise AuthError(refused)
        raw = await self.cache.get(key)
        if raw is not None and (identity := self._from_cache(key, raw)) is not None:
            return identity
        check = self._checks.get(key)
        if check is None:
            await self.limiter.hit(
                address, RATE_SCOPE, per_minute=self.settings.token_checks_per_minute
            )
            check = asyncio.ensure_future(self._verify(token, key, on_new))
            self._checks[key] = check
            check.add_done_callback(lambda done: self._checked(key, done))
        return await asyncio.shield(check)

    def _from_cache(self, key: str, raw: str | bytes) -> Identity | None:
        """The shared cache's identity, if still trusted (another process's clock may run
        behind ours); a refusal raises."""
        data = json.loads(raw)
        if "refused" in data:
            self._refused[key] = str(data["refused"])
            raise AuthError(self._refused[key])
        identity = Identity.from_json(raw, self.admin_groups)
        if identity.valid_until <= time.time():
            return None
        self._memo[key] = identity
        return identity

    async def _verify(self, token: str, key: str, on_new: OnNewIdentity | None) -> Identity:
        now = time.time()
        try:
            identity = await self._check(token, now)
        except AuthError as exc:
            # Replaces a cached identity too: an active:false answer ends it at once.
            self._memo.pop(key, None)
            self._refused[key] = str(exc)
            refused = json.dumps({"refused": str(exc)})
            await self.cache.set(key, refused, expire=self.settings.refused_ttl)
            raise
        if on_new is not None:
            await on_new(identity)
        await self.cache.set(key, identity.to_json(), expire=identity.valid_until - now)
        self._memo[key] = identity
        return identity

    def _checked(self, key: str, done: asyncio.Task[Identity]) -> None:
        self._checks.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved: every waiter may have gone

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
            self._check_client(info)
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
            expires_at = unverified_jwt_expiry(token) or now + self.settings.identity_ttl
        if expires_at <= now:
            raise AuthError("Token expired")
        group_names = tuple(g for g in groups or () if isinstance(g, str))
        return Identity(
            name,
            group_names,
            expires_at,
            bool(self.admin_groups & set(group_names)),
            valid_until=min(expires_at, now + self.settings.identity_ttl),
        )

    def _check_client(self, info: dict[str, Any]) -> None:
        """The token must have been issued to (or for) an allowed client application: a token
        another application obtained for the same user is not a log-in to fmn."""
        audience = info.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        issued_to = {info.get("client_id"), *audiences}
        if not self.allowed_clients & issued_to:
            raise AuthError("The token was not issued to this application")

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


def _trusted_until(_key: str, identity: Identity, _now: float) -> float:
    return identity.valid_until


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None

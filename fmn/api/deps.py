"""FastAPI dependencies, as `Annotated` aliases the routes take as parameters.

All are `async def`, even those that do not await: FastAPI runs plain functions in a thread
pool, a thread hop per dependency per request.

No `from __future__ import annotations` here: `_rate_limited` builds dependencies whose
annotations name a closure variable, which FastAPI can only see if they are evaluated.
"""

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Query, Request
from fastapi.security import HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from fmn.api.auth import Identity
from fmn.api.first_login import ensure_user
from fmn.api.services import Services
from fmn.core.settings import Settings
from fmn.directory import names
from fmn.directory.base import Directory
from fmn.rules.schema import MAX_NAME_LENGTH


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]

# The dependencies below take the services from the request, not as `ServicesDep`: FastAPI
# solves a dependency's own dependencies on every request, even when their value is cached, so
# each `ServicesDep` beneath another dependency is one more resolution per request
# (docs/performance.md, "Fewer dependency resolutions").


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_settings(request: Request) -> Settings:
    return _services(request).settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with _services(request).sessionmaker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with _services(request).read_sessionmaker() as session:
        yield session


# For requests that only read (each statement sees committed data; nothing to commit).
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session)]


async def get_directory(request: Request) -> Directory:
    return _services(request).directory


DirectoryDep = Annotated[Directory, Depends(get_directory)]


class BearerIdentity(HTTPBearer):
    """The identity of the request's bearer token (401 without one). The security scheme
    itself does the verification: one dependency for FastAPI to resolve on every authenticated
    request instead of two (the token's, then the identity's); the OpenAPI document is the
    same (scheme `HTTPBearer`)."""

    async def __call__(self, request: Request) -> Identity:  # type: ignore[override]
        credentials = await super().__call__(request)
        if credentials is None:
            raise HTTPException(401, "Not authenticated", headers={"WWW-Authenticate": "Bearer"})
        services = _services(request)

        async def first_login(identity: Identity) -> None:
            async with services.sessionmaker() as session:
                await ensure_user(session, services.directory, services.announcer, identity.name)

        address = request.client.host if request.client else "unknown"
        return await services.verifier.identify(
            credentials.credentials, on_new=first_login, address=address
        )


get_identity = BearerIdentity(
    auto_error=False,
    scheme_name="HTTPBearer",
    description="An access token from the OIDC provider",
)
CurrentUser = Annotated[Identity, Depends(get_identity)]


async def get_admin(identity: CurrentUser) -> Identity:
    if not identity.is_admin:
        raise HTTPException(403, "Not an admin")
    return identity


AdminUser = Annotated[Identity, Depends(get_admin)]

# A username as the account system spells them: refused (422) before any look-up otherwise.
Username = Annotated[str, Path(min_length=1, max_length=MAX_NAME_LENGTH, pattern=names.PATTERN)]
# Rule ids are 32-bit in the database (FMN 3's schema).
MAX_ID = 2**31 - 1
# Named `{id}` in paths, as in FMN 3's OpenAPI document, so spec diffs and generated clients see
# the same operations; `rule_id` in the code.
RuleId = Annotated[int, Path(ge=1, le=MAX_ID, alias="id")]
# Rules lists: FMN 3's clients reject a tracking rule FMN 3 does not have, so fmn's own kinds
# are listed only to clients that ask (docs/decisions.md).
AllKinds = Annotated[
    bool,
    Query(
        description="Also the rules of fmn's own tracking rules (applications, topics, "
        "projects-followed), which FMN 3's clients cannot read"
    ),
]


async def get_owner(username: Username, identity: CurrentUser) -> Identity:
    """The logged-in user, who must be the one named in the path."""
    if username != identity.name:
        raise HTTPException(403, "Not allowed to see or change someone else's data")
    return identity


Owner = Annotated[Identity, Depends(get_owner)]


async def owner_or_admin(username: Username, identity: CurrentUser) -> Identity:
    if username != identity.name and not identity.is_admin:
        raise HTTPException(403, "Not allowed to see someone else's data")
    return identity


OwnerOrAdmin = Annotated[Identity, Depends(owner_or_admin)]


def _rate_limited(who: Callable[..., Any]) -> Callable[..., Awaitable[Identity]]:
    """A dependency: the user `who` gives, counted against their rate limit."""

    async def dependency(request: Request, identity: Annotated[Identity, Depends(who)]) -> Identity:
        await _services(request).limiter.hit(identity.name)
        return identity

    return dependency


# Directory and archive readers, rate limited per user.
RateLimitedUser = Annotated[Identity, Depends(_rate_limited(get_identity))]
RateLimitedOwner = Annotated[Identity, Depends(_rate_limited(get_owner))]
RateLimitedOwnerOrAdmin = Annotated[Identity, Depends(_rate_limited(owner_or_admin))]

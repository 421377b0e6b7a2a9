"""Applications, artifact search, the web app's configuration, health checks."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from fmn.api import health
from fmn.api.applications import application_names
from fmn.api.deps import CurrentUser, DirectoryDep, RateLimitedUser, ServicesDep, SettingsDep
from fmn.api.pagination import PageDep, paginate_list
from fmn.api.schemas import AppConfig, ArtifactPublic, Detail
from fmn.directory import names
from fmn.rules.index import ARTIFACT_NAMESPACES
from fmn.rules.schema import MAX_NAME_LENGTH

log = logging.getLogger(__name__)

router = APIRouter()

# At most this many of each of names=, users=, groups= in one artifact search.
MAX_ARTIFACT_QUERIES = 20
Names = Annotated[
    list[Annotated[str, Query(min_length=1, max_length=MAX_NAME_LENGTH)]],
    Query(max_length=MAX_ARTIFACT_QUERIES),
]
# Usernames and group names, as the account system spells them.
AccountNames = Annotated[
    list[Annotated[str, Query(min_length=1, max_length=MAX_NAME_LENGTH, pattern=names.PATTERN)]],
    Query(max_length=MAX_ARTIFACT_QUERIES),
]


@router.get("/applications", response_model=list[str], tags=["misc"])
async def list_applications(_user: CurrentUser, page: PageDep, response: Response) -> list[str]:
    return paginate_list(await run_in_threadpool(application_names), page, response)


@router.get("/artifacts", response_model=list[ArtifactPublic], tags=["misc"])
async def search_artifacts(
    _user: RateLimitedUser,
    directory: DirectoryDep,
    page: PageDep,
    response: Response,
    names: Names = [],  # noqa: B006 (FastAPI copies defaults)
    users: AccountNames = [],  # noqa: B006
    groups: AccountNames = [],  # noqa: B006
) -> list[ArtifactPublic]:
    """Packages and other artifacts: by name pattern (`*foo*`), owned by users, by groups."""
    lookups = [
        *(directory.search_projects(n) for n in names),
        *(directory.get_user_projects(u) for u in users),
        *(directory.get_group_projects(g) for g in groups),
    ]
    paths = {path for found in await asyncio.gather(*lookups) for path in found}
    artifacts = sorted(
        (namespace, name)
        for namespace, _, name in (p.partition("/") for p in paths)
        if namespace in ARTIFACT_NAMESPACES and name
    )
    found = [ArtifactPublic(type=t, name=n) for t, n in artifacts]  # type: ignore[arg-type]
    return paginate_list(found, page, response)


@router.get("/config", response_model=AppConfig, tags=["misc"])
async def web_app_config(settings: SettingsDep) -> AppConfig:
    """What the web app needs to log in (no login needed)."""
    return AppConfig(
        oidc_provider_url=settings.oidc.provider_url,
        oidc_client_id=settings.oidc.frontend_client_id,
        oidc_scopes=" ".join(settings.oidc.scopes),
        public_url=settings.public_url,
    )


@router.get("/healthz/live", response_model=Detail, tags=["health"])
async def liveness() -> Detail:
    return Detail(detail="OK")


@router.get(
    "/healthz/ready",
    response_model=Detail,
    tags=["health"],
    responses={503: {"model": Detail, "description": "A dependency is not ready"}},
)
async def readiness(services: ServicesDep) -> Detail | JSONResponse:
    """Ready when the database answers with the current schema, and the bus and the cache
    answer. Anyone may ask, so the answer says only ready or not: what failed, and why, is in
    the log and on the admins' status page."""
    failed = [c for c in await health.readiness(services) if not c.ok]
    if failed:
        log.warning("not ready: %s", "; ".join(f"{c.name}: {c.detail}" for c in failed))
        return JSONResponse({"detail": "Not ready"}, status_code=503)
    return Detail(detail="OK")

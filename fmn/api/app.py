"""The application factory: `create_app(settings)`; `app_factory()` for uvicorn."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from starlette.middleware.cors import CORSMiddleware

from fmn.api.edge import Edge
from fmn.api.errors import CatchAll, install_error_handlers
from fmn.api.frontend import frontend_dir, mount_frontend
from fmn.api.metrics import REGISTRY, metrics_endpoint, watch_announcer
from fmn.api.pagination import PAGE_HEADERS
from fmn.api.routes import (
    admin,
    feeds,
    inbox,
    misc,
    pickers,
    preview,
    push,
    rules,
    teams,
    unsubscribe,
    user_settings,
    users,
)
from fmn.api.routes.inbox import UNREAD_HEADER
from fmn.api.security_headers import SecurityHeaders
from fmn.api.services import Overrides, start_services, stop_services
from fmn.core.metrics import serve_registry
from fmn.core.settings import Settings, get_settings
from fmn.directory.base import Directory
from fmn.transport.base import Broker

PREFIX = "/api/v1"

# The API's routers, in the order their routes are matched.
API_ROUTERS: tuple[APIRouter, ...] = (
    users.router,
    preview.router,  # before rules: /rules/preview is not a rule id
    rules.router,
    user_settings.router,
    inbox.router,
    push.router,
    feeds.router,
    admin.router,
    misc.router,
    pickers.router,
    unsubscribe.router,
    teams.router,
)


def create_app(
    settings: Settings,
    *,
    sessionmaker: object | None = None,
    directory: Directory | None = None,
    bus: Broker | None = None,
    send_broker: Broker | None = None,
    extra_routers: Sequence[APIRouter] = (),
    freeze_gc: bool = False,
) -> FastAPI:
    """The API. Parts left as None are built from the settings at startup. `extra_routers`
    (with their own prefixes) come before the web app's catch-all: `fmn run` adds its dev
    routes and built-in OIDC provider this way. `freeze_gc`: for a process that serves only
    this app (see `app_factory`)."""
    overrides = Overrides(
        sessionmaker=sessionmaker,  # type: ignore[arg-type]
        directory=directory,
        bus=bus,
        send_broker=send_broker,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = await start_services(settings, overrides)
        watch_announcer(app.state.services.announcer)
        metrics_server = (
            serve_registry(settings.api.metrics_port, settings.api.host, REGISTRY)
            if settings.api.metrics_port is not None
            else None
        )
        if freeze_gc:
            # Everything built so far (modules, routes, schemas, services) lives as long as
            # the process: out of the collector's sight, a full collection under load takes
            # a few milliseconds instead of ~140 ms (measured: those pauses were the rules
            # list's p99 at 100 connections).
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if metrics_server is not None:
                metrics_server.shutdown()
                metrics_server.server_close()
            await stop_services(app.state.services)

    app = FastAPI(
        title="Fedora Messaging Notifications",
        version="1",
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=f"{PREFIX}/docs",
        redoc_url=None,
        lifespan=lifespan,
        # fmn exports Prometheus metrics (fmn.api.metrics), no OpenTelemetry: off, FastAPI does
        # not look for OpenTelemetry providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_error_handlers(app)
    for router in API_ROUTERS:
        add_routes(app, router, PREFIX)
    for extra in extra_routers:
        app.include_router(extra)

    # FMN 3 served its API documentation at the server's root (FastAPI's defaults), and its web
    # app's footer links <server>/docs: both lead to the documents under the API's prefix.
    for old, new in (("/docs", app.docs_url), ("/openapi.json", app.openapi_url)):
        app.add_api_route(old, _redirect_to(new), methods=["GET"], include_in_schema=False)

    # Public metrics tell anyone the traffic per route and the queue of announcements: only
    # when asked for (the Ingress never routes /metrics either).
    if settings.api.metrics_public:
        app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
        app.add_route(f"{PREFIX}/metrics", metrics_endpoint, include_in_schema=False)

    # Added innermost first: CORS wraps CatchAll so that 500s carry CORS headers too.
    app.add_middleware(CatchAll)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.api.cors_origins,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=[*PAGE_HEADERS, UNREAD_HEADER],
    )
    # Outermost, in one layer: metrics, security headers and the body limit (413s and CORS
    # preflights are counted and carry the security headers).
    app.add_middleware(
        Edge,
        max_body_size=settings.api.max_body_size,
        security_headers=SecurityHeaders(
            public_url=settings.public_url,
            identity_provider=settings.oidc.provider_url,
            docs_path=app.docs_url,
        ),
    )

    root = frontend_dir(settings.api)
    if root is not None:
        mount_frontend(app, root)
    return app


def add_routes(app: FastAPI, router: APIRouter, prefix: str) -> None:
    """The router's routes in the app's own route table, under `prefix`, each as
    `include_router` would show it (the OpenAPI document is the same). Not `include_router`:
    FastAPI keeps an included router as one entry of the table and, on every request, searches
    each router before the right one route by route, then the right one again, at a cost of a
    few microseconds per route passed; with a flat table a request to a late router costs
    about a third less CPU (docs/performance.md, "The ordinary path made cheaper")."""
    for route in router.routes:
        if not isinstance(route, APIRoute):
            raise TypeError(f"{route!r}: only API routes can be added this way")
        app.router.add_api_route(
            prefix + route.path,
            route.endpoint,
            response_model=route.response_model,
            status_code=route.status_code,
            tags=route.tags,
            dependencies=route.dependencies,
            summary=route.summary,
            description=route.description,
            response_description=route.response_description,
            responses=route.responses,
            deprecated=route.deprecated,
            methods=route.methods,
            operation_id=route.operation_id,
            response_model_include=route.response_model_include,
            response_model_exclude=route.response_model_exclude,
            response_model_by_alias=route.response_model_by_alias,
            response_model_exclude_unset=route.response_model_exclude_unset,
            response_model_exclude_defaults=route.response_model_exclude_defaults,
            response_model_exclude_none=route.response_model_exclude_none,
            include_in_schema=route.include_in_schema,
            response_class=route.response_class,
            name=route.name,
            callbacks=route.callbacks,
            openapi_extra=route.openapi_extra,
            generate_unique_id_function=route.generate_unique_id_function,
            strict_content_type=route.strict_content_type,
            max_body_size=route.max_body_size,
            form_limits=route.form_limits,
        )


def _redirect_to(url: str | None) -> Callable[[], Awaitable[RedirectResponse]]:
    async def redirect() -> RedirectResponse:
        return RedirectResponse(url or "/", status_code=308)

    return redirect


def app_factory() -> FastAPI:
    """For `uvicorn --factory fmn.api.app:app_factory`: settings from the file/environment."""
    return create_app(get_settings(), freeze_gc=True)

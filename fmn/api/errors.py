"""Errors as JSON `{"detail": ...}`: known failures get their status, anything else a logged
500 "Unknown Error" (FMN 3's shape) that keeps CORS headers (FMN 3 #922)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from fmn.api.auth import AuthError, ProviderUnavailable
from fmn.api.limits import RateLimited
from fmn.api.middleware import WatchedSend
from fmn.directory.base import DirectoryUnavailable

log = logging.getLogger(__name__)


async def _auth_error(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        {"detail": str(exc)}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
    )


async def _provider_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "30"})


async def _directory_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    log.warning("directory unavailable: %r", exc)
    return JSONResponse(
        {"detail": "The account system is unavailable, try again later"},
        status_code=503,
        headers={"Retry-After": "30"},
    )


async def _rate_limited(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RateLimited)
    return JSONResponse(
        {"detail": str(exc)}, status_code=429, headers={"Retry-After": str(exc.retry_after)}
    )


class CatchAll:
    """Turns an unhandled exception into a 500 JSON answer. Installed inside the CORS
    middleware (Starlette's own handler sits outside it, so its 500s lack CORS headers)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        watched = WatchedSend(send)
        try:
            await self.app(scope, receive, watched)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if watched.started:
                raise
            response = JSONResponse({"detail": "Unknown Error"}, status_code=500)
            await response(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AuthError, _auth_error)
    app.add_exception_handler(ProviderUnavailable, _provider_unavailable)
    app.add_exception_handler(DirectoryUnavailable, _directory_unavailable)
    app.add_exception_handler(RateLimited, _rate_limited)

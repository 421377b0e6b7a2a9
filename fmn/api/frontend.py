"""The built web app (frontend/dist) served at "/", so the embedded default is one process.
Files are served as they are; any other path that is not the API's gets index.html, which lets
the single-page app route it (history mode)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse

from fmn.core.settings import APISettings

CHECKOUT_DIST = Path(__file__).resolve().parent.parent.parent / "frontend" / "dist"
# Never the web app: the API, metrics, and the built-in identity provider of `fmn run
# --builtin-login` (a log-in page there, where there is no such provider, would mislead).
RESERVED = ("api/", "metrics", "idp/")


def frontend_dir(settings: APISettings) -> Path | None:
    """The directory to serve, or None when there is no built app."""
    path = Path(settings.frontend_dir) if settings.frontend_dir else CHECKOUT_DIST
    return path if (path / "index.html").is_file() else None


def mount_frontend(app: FastAPI, root: Path) -> None:
    root = root.resolve()
    index = root / "index.html"

    @app.get("/{path:path}", include_in_schema=False)
    async def spa(path: str) -> FileResponse:
        if path.startswith(RESERVED):
            raise HTTPException(404, "Not Found")
        candidate = (root / path).resolve()
        if path and candidate.is_file() and candidate.is_relative_to(root):
            # Vite fingerprints everything under assets/: cache it for good.
            immutable = path.startswith("assets/")
            headers = {"Cache-Control": "public, max-age=31536000, immutable"} if immutable else {}
            return FileResponse(candidate, headers=headers)
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

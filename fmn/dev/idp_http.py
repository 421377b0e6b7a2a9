"""The built-in OIDC provider's HTTP side: its routes (an APIRouter the embedded run mounts on the
API's server) and the login page, which lists the sample users to log in as."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jinja2
from authlib.common.security import generate_token
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.errors import InsecureTransportError
from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.requests import Request
from starlette.responses import Response

from fmn.dev import idp

SESSION_COOKIE = "fmn_dev_idp"
# Parameters of the login form itself, not of the authorization request it carries on.
_FORM_FIELDS = ("username", "deny")

# A file of its own, not a <style> element: the Content-Security-Policy allows no inline style.
_CSS = """\
 body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto;
        padding: 0 1rem; }
 .user { display: block; width: 100%; text-align: left; padding: .75rem 1rem; margin: .5rem 0;
         border: 1px solid #bbb; border-radius: .5rem; background: #f8f9fa; cursor: pointer; }
 .user:hover { background: #e7f1ff; } .muted { color: #666; font-size: .9rem; }
 .deny { margin-top: 1rem; }
"""

_templates = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
_PAGE = _templates.from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} · fmn development sign-in</title>
<link rel="stylesheet" href="login.css"></head>
<body>
<main>
<h1>{{ title }}</h1>
{% if users is defined %}
<p>This is fmn's <strong>built-in identity provider</strong>, for the embedded default only.
There are no passwords: pick who to be.
<span class="muted">(Application: {{ client_id }})</span></p>
<form method="post" action="{{ action }}">
 {% for name, value in hidden %}<input type="hidden" name="{{ name }}" value="{{ value }}">
 {% endfor %}
 {% for user in users %}
 <button class="user" type="submit" name="username" value="{{ user.username }}">
  <strong>{{ user.name }}</strong> ({{ user.username }})
  {% if user.username == current %}<em>— logged in</em>{% endif %}<br>
  <span class="muted">{{ user.email }}{% if user.groups %} · groups: {{ user.groups | join(", ")
  }}{% endif %}</span>
 </button>
 {% endfor %}
 <button class="deny" type="submit" name="deny" value="1">Cancel</button>
</form>
{% else %}
<p>{{ message }}</p>
{% endif %}
</main>
</body></html>
"""
)


def _page(status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(
        _PAGE.render(**context), status_code=status, headers={"Cache-Control": "no-store"}
    )


async def _read(request: Request) -> idp.Request:
    form: list[tuple[str, str]] = []
    if request.method == "POST":
        data = await request.form()
        form = [(k, v) for k, v in data.multi_items() if isinstance(v, str)]
    return idp.Request(
        request.method,
        str(request.url),
        request.headers,
        list(request.query_params.multi_items()),
        form,
    )


def make_idp_router(provider: idp.IdentityProvider, prefix: str) -> APIRouter:
    """The provider's endpoints under `prefix` (the issuer's path, e.g. "/idp")."""
    router = APIRouter(prefix=prefix, include_in_schema=False)
    server = provider.server

    def session_user(request: Request) -> idp.SampleUser | None:
        name = provider.sessions.get(request.cookies.get(SESSION_COOKIE, ""))
        return provider.users.get(name) if name else None

    async def oauth_request(request: Request) -> idp.Request | Response:
        try:
            return await _read(request)
        except InsecureTransportError:
            return _page(
                400,
                title="Use a loopback address",
                message="Over plain HTTP, open the app at http://localhost or http://127.0.0.1.",
            )

    # Every page is at <prefix>/<name>, and links its style sheet as "login.css".
    @router.get("/login.css")
    async def stylesheet() -> Response:
        return Response(_CSS, media_type="text/css", headers={"Cache-Control": "no-cache"})

    @router.get("/.well-known/openid-configuration")
    async def discovery() -> JSONResponse:
        return JSONResponse(provider.discovery())

    @router.get("/jwks")
    async def jwks() -> JSONResponse:
        return JSONResponse(provider.jwks())

    @router.get("/authorize")
    async def authorize_page(request: Request) -> Response:
        req = await oauth_request(request)
        if isinstance(req, Response):
            return req
        current = session_user(request)
        try:
            grant = server.get_consent_grant(req, end_user=current)
        except OAuth2Error as error:
            if error.redirect_uri:  # validated: the client may be told
                return server.handle_error_response(req, error)  # type: ignore[no-any-return]
            return _page(400, title="Login refused", message=error.get_error_description())
        if req.payload.data.get("prompt") == "none":
            # Silent re-authentication: the user logged in here already.
            return server.create_authorization_response(  # type: ignore[no-any-return]
                req, grant_user=current, grant=grant
            )
        hidden = [
            (name, value)
            for name, values in req.payload.datalist.items()
            if name not in _FORM_FIELDS
            for value in values
        ]
        return _page(
            title="Log in",
            users=sorted(provider.users.values(), key=lambda u: u.username),
            current=current.username if current else "",
            client_id=grant.client.client_id,
            hidden=hidden,
            action=request.url.path,
        )

    @router.post("/authorize")
    async def authorize(request: Request) -> Response:
        req = await oauth_request(request)
        if isinstance(req, Response):
            return req
        data = req.payload.data
        user = None if data.get("deny") else provider.users.get(data.get("username", ""))
        if user is None and not data.get("deny"):
            return _page(400, title="Login refused", message="No such sample user.")
        try:
            grant = server.get_consent_grant(req, end_user=user)
        except OAuth2Error as error:
            if error.redirect_uri:
                return server.handle_error_response(req, error)  # type: ignore[no-any-return]
            return _page(400, title="Login refused", message=error.get_error_description())
        response: Response = server.create_authorization_response(req, grant_user=user, grant=grant)
        if user is not None:
            session = generate_token(32)
            provider.sessions[session] = user.username
            response.set_cookie(SESSION_COOKIE, session, path=prefix, httponly=True, samesite="lax")
        return response

    async def answer(request: Request, action: Callable[[idp.Request], Response]) -> Response:
        req = await oauth_request(request)
        return req if isinstance(req, Response) else action(req)

    @router.post("/token")
    async def token(request: Request) -> Response:
        return await answer(request, server.create_token_response)

    @router.api_route("/userinfo", methods=["GET", "POST"])
    async def userinfo(request: Request) -> Response:
        req = await oauth_request(request)
        if isinstance(req, Response):
            return req
        try:
            found = provider.protector.validate_request(["openid"], req)
        except OAuth2Error as error:
            return server.handle_error_response(req, error)  # type: ignore[no-any-return]
        return JSONResponse(provider.user_info(found.user, found.scope))

    @router.post("/introspect")
    async def introspect(request: Request) -> Response:
        return await answer(request, partial(server.create_endpoint_response, "introspection"))

    @router.post("/revoke")
    async def revoke(request: Request) -> Response:
        return await answer(request, partial(server.create_endpoint_response, "revocation"))

    @router.api_route("/logout", methods=["GET", "POST"])
    async def logout(request: Request) -> Response:
        req = await oauth_request(request)
        if isinstance(req, Response):
            return req
        try:
            ended = server.validate_endpoint_request("end_session", req)
        except OAuth2Error as error:
            return _page(400, title="Logout refused", message=error.get_error_description())
        response: Response = server.create_endpoint_response("end_session", ended) or _page(
            title="Logged out", message="You are logged out of fmn's built-in provider."
        )
        provider.sessions.pop(request.cookies.get(SESSION_COOKIE, ""), None)
        response.delete_cookie(SESSION_COOKIE, path=prefix)
        return response

    return router

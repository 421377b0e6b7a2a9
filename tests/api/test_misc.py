"""Directory proxies, applications, artifacts, config, health, metrics, rate
limits, CORS and the web app's files."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from fmn.core.settings import Settings
from tests.api.conftest import ALICE_EMAIL
from tests.factories import make_user
from tests.harness import services
from tests.harness.ports import free_port


def client_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def with_api(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(update={"api": settings.api.model_copy(update=changes)})


async def test_directory_proxies(client: httpx.AsyncClient, auth: Any) -> None:
    headers = auth("alice")
    search = await client.get("/api/v1/users?search=li", headers=headers)
    assert search.json() == ["alice"]
    assert (await client.get("/api/v1/users", headers=headers)).json() == ["alice"]
    info = await client.get("/api/v1/users/alice/info", headers=headers)
    assert info.json()["emails"][0] == ALICE_EMAIL
    groups = await client.get("/api/v1/users/alice/groups", headers=headers)
    assert groups.json() == ["packager", "python-sig"]
    destinations = await client.get("/api/v1/users/alice/destinations", headers=headers)
    assert destinations.json() == [
        {"protocol": "email", "address": ALICE_EMAIL},
        {"protocol": "email", "address": "Alice.Other@Example.com"},
        {"protocol": "irc", "address": "alice_irc"},
        {"protocol": "irc", "address": "alice_libera"},
        {"protocol": "matrix", "address": "@alice:matrix.org"},
        {"protocol": "matrix", "address": "@alice_fed:fedora.im"},
        {"protocol": "web", "address": "alice"},
    ]
    assert destinations.headers["x-total-count"] == "7"
    missing = await client.get("/api/v1/users/nobody/groups", headers=headers)
    assert missing.status_code == 404


async def test_artifacts_and_applications(client: httpx.AsyncClient, auth: Any) -> None:
    headers = auth("bob")
    found = await client.get(
        "/api/v1/artifacts?names=*foo*&users=bob&groups=python-sig", headers=headers
    )
    assert found.json() == [
        {"type": "containers", "name": "foo"},
        {"type": "rpms", "name": "bar"},
        {"type": "rpms", "name": "python-foo"},
    ]
    too_many = "&".join(f"names=n{i}" for i in range(21))
    assert (await client.get(f"/api/v1/artifacts?{too_many}", headers=headers)).status_code == 422
    apps = (await client.get("/api/v1/applications?page_size=500", headers=headers)).json()
    assert "bodhi" in apps and "Koji" in apps and "FMN" in apps
    assert len({a.lower() for a in apps}) == len(apps)


async def test_config_needs_no_login(client: httpx.AsyncClient, api_settings: Settings) -> None:
    response = await client.get("/api/v1/config")
    assert response.json() == {
        "oidc_provider_url": api_settings.oidc.provider_url,
        "oidc_client_id": "fmn-frontend",
        "oidc_scopes": "openid profile email https://id.fedoraproject.org/scope/groups",
        "public_url": "https://notifications.example.org",
    }


async def test_health(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/healthz/live")).json() == {"detail": "OK"}
    ready = await client.get("/api/v1/healthz/ready")
    assert ready.status_code == 200, ready.text


@pytest.fixture
def unmigrated() -> Iterator[async_sessionmaker[AsyncSession]]:
    """Sessions on an empty database (no migrations run)."""
    name = f"{services.pg_database_name()}_empty"
    url = services.recreate_database(name)
    yield async_sessionmaker(create_async_engine(url, poolclass=NullPool))
    services.drop_database(name)


async def test_not_ready_without_migrations_cache_or_bus(
    make_app: Any, api_settings: Settings, unmigrated: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from fmn.api.app import create_app

    app = create_app(api_settings, sessionmaker=unmigrated)
    async with app.router.lifespan_context(app), client_for(app) as http:
        response = await http.get("/api/v1/healthz/ready")
    assert response.status_code == 503
    # Anyone may ask: the answer says not ready, the log says why.
    assert response.json() == {"detail": "Not ready"}
    assert "fmn db upgrade" in caplog.text

    broken = api_settings.model_copy(
        update={
            "cache": api_settings.cache.model_copy(update={"url": "redis://127.0.0.1:9/0"}),
            "bus": api_settings.bus.model_copy(
                update={"amqp_url": "amqp://guest:guest@127.0.0.1:9/"}
            ),
        }
    )
    app = await make_app(broken)
    async with client_for(app) as http:
        response = await http.get("/api/v1/healthz/ready")
    assert response.status_code == 503 and response.json() == {"detail": "Not ready"}
    assert "cache:" in caplog.text and "bus:" in caplog.text
    assert "127.0.0.1" not in response.text


async def test_metrics_are_closed_by_default(
    client: httpx.AsyncClient, make_app: Any, api_settings: Settings
) -> None:
    assert (await client.get("/metrics")).status_code == 404
    assert (await client.get("/api/v1/metrics")).status_code == 404


def _counted_live_requests(text: str) -> bool:
    return any(
        line.startswith("fmn_api_requests_total{")
        and 'route="/api/v1/healthz/live"' in line
        and 'status="200"' in line
        for line in text.splitlines()
    )


async def test_metrics_on_their_own_port_or_public_when_asked(
    make_app: Any, api_settings: Settings
) -> None:
    port = free_port()
    app = await make_app(with_api(api_settings, metrics_port=port))
    async with client_for(app) as http:
        await http.get("/api/v1/healthz/live")
        assert (await http.get("/metrics")).status_code == 404
    async with httpx.AsyncClient() as scraper:
        response = await scraper.get(f"http://127.0.0.1:{port}/metrics")
    assert _counted_live_requests(response.text), response.text[:2000]
    assert "fmn_api_request_duration_seconds_bucket" in response.text
    assert "fmn_api_announcements_pending" in response.text

    app = await make_app(with_api(api_settings, metrics_public=True))
    async with client_for(app) as http:
        await http.get("/api/v1/healthz/live")
        response = await http.get("/metrics")
    assert response.status_code == 200 and _counted_live_requests(response.text)


async def test_rate_limit_on_directory_proxies(
    make_app: Any, api_settings: Settings, auth: Any
) -> None:
    app = await make_app(with_api(api_settings, rate_limit_per_minute=3))
    async with client_for(app) as http:
        statuses = [
            (await http.get("/api/v1/users/alice/groups", headers=auth("alice"))).status_code
            for _ in range(4)
        ]
        assert statuses == [200, 200, 200, 429]
        limited = await http.get("/api/v1/artifacts?names=x", headers=auth("alice"))
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        # Per user: bob is not limited by alice's requests; rules are not rate limited.
        assert (await http.get("/api/v1/users/bob/groups", headers=auth("bob"))).status_code == 200
        rules = await http.get("/api/v1/users/alice/rules", headers=auth("alice"))
        assert rules.status_code == 200


async def test_rate_limit_holds_per_process_when_redis_is_unreachable(
    make_app: Any, api_settings: Settings, auth: Any
) -> None:
    closed = f"redis://127.0.0.1:{free_port()}"  # nothing listens there
    settings = with_api(api_settings, rate_limit_per_minute=3)
    cache = settings.cache.model_copy(update={"url": closed})
    app = await make_app(settings.model_copy(update={"cache": cache}))
    if time.time() % 60 > 55:  # the four requests must fall in one one-minute window
        await asyncio.sleep(60.5 - time.time() % 60)
    async with client_for(app) as http:
        statuses = [
            (await http.get("/api/v1/users/alice/groups", headers=auth("alice"))).status_code
            for _ in range(4)
        ]
        assert statuses == [200, 200, 200, 429]
        assert (await http.get("/api/v1/users/bob/groups", headers=auth("bob"))).status_code == 200


async def test_cors_headers_even_on_errors(client: httpx.AsyncClient) -> None:
    origin = {"Origin": "http://localhost:5173"}
    response = await client.get("/api/v1/users/me", headers=origin)
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == "http://localhost:5173"
    preflight = await client.options(
        "/api/v1/users/alice/rules",
        headers={**origin, "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status_code == 200
    listed = await client.get("/api/v1/config", headers=origin)
    assert "X-Total-Count" in listed.headers.get("access-control-expose-headers", "")


async def test_serves_the_web_app(make_app: Any, api_settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<html>fmn</html>")
    (tmp_path / "assets" / "app-1234.js").write_text("console.log(1)")
    (tmp_path.parent / "secret.txt").write_text("secret")
    app = await make_app(with_api(api_settings, frontend_dir=str(tmp_path)))
    async with client_for(app) as http:
        assert (await http.get("/")).text == "<html>fmn</html>"
        asset = await http.get("/assets/app-1234.js")
        assert asset.text == "console.log(1)" and "immutable" in asset.headers["cache-control"]
        assert (await http.get("/rules/12")).text == "<html>fmn</html>"  # SPA route
        assert "secret" not in (await http.get("/../secret.txt")).text
        assert "secret" not in (await http.get("/assets/..%2F..%2Fsecret.txt")).text
        missing = await http.get("/api/v1/nothing-here")
        assert missing.status_code == 404 and missing.json() == {"detail": "Not Found"}
        assert (await http.get("/api/v1/config")).status_code == 200


async def test_no_stand_in_log_in_or_dev_routes_in_the_api(
    make_app: Any, api_settings: Settings, tmp_path: Path, auth: Any
) -> None:
    """`fmn api` serves neither the built-in identity provider nor the dev routes, not even as
    the web app's page (which would offer a log-in where there is none)."""
    (tmp_path / "index.html").write_text("<html>fmn</html>")
    app = await make_app(with_api(api_settings, frontend_dir=str(tmp_path)))
    async with client_for(app) as http:
        for path in (
            "/idp/.well-known/openid-configuration",
            "/idp/authorize?client_id=fmn-frontend&response_type=code",
            "/idp/token",
        ):
            assert (await http.get(path)).status_code == 404, path
        for path in ("/api/v1/dev/info", "/api/v1/dev/mail", "/api/v1/dev/chat"):
            response = await http.get(path, headers=auth("alice"))
            assert response.status_code == 404, path


def test_openapi_document_is_served_and_json(api_settings: Settings) -> None:
    from fmn.api.app import create_app

    document = create_app(api_settings).openapi()
    assert document["paths"]["/api/v1/users/{username}/rules/preview"]["post"]
    json.dumps(document)


def test_the_route_table_documents_what_included_routers_would(api_settings: Settings) -> None:
    """The API's routes are added one by one (`add_routes`, cheaper per request than FastAPI's
    included routers): the OpenAPI document, which FMN 3's clients read, must be the one
    `include_router` gives, so that no route attribute is lost on the way."""
    from fastapi import FastAPI

    from fmn.api.app import API_ROUTERS, PREFIX, create_app

    ours = create_app(api_settings)
    included = FastAPI(title=ours.title, version=ours.version, openapi_url=ours.openapi_url)
    for router in API_ROUTERS:
        included.include_router(router, prefix=PREFIX)
    expected = included.openapi()
    assert len(expected["paths"]) > 40
    assert ours.openapi() == expected


async def test_security_headers_on_the_api_and_the_web_app(
    make_app: Any, api_settings: Settings, tmp_path: Path, auth: Any, session: AsyncSession
) -> None:
    (tmp_path / "index.html").write_text("<html>fmn</html>")
    await make_user(session, "alice")
    await session.commit()
    app = await make_app(with_api(api_settings, frontend_dir=str(tmp_path)))
    async with client_for(app) as http:
        answers = [
            await http.get("/"),
            await http.get("/rules/3"),
            await http.get("/api/v1/config"),
            await http.get("/api/v1/nothing-here"),
            await http.get("/api/v1/users/alice/rules", headers=auth("alice")),
        ]
    for response in answers:
        csp = response.headers["content-security-policy"]
        policy = dict(part.strip().split(" ", 1) for part in csp.split(";"))
        assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
        assert policy["frame-ancestors"] == "'none'"
        assert api_settings.oidc.provider_url.split("/")[2] in policy["connect-src"]
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
        assert "max-age=" in response.headers["strict-transport-security"]  # an https URL
    plain = api_settings.model_copy(update={"public_url": "http://127.0.0.1:8080"})
    async with client_for(await make_app(plain)) as http:
        response = await http.get("/api/v1/config")
    assert "strict-transport-security" not in response.headers
    assert "content-security-policy" in response.headers


def test_openapi_names_path_parameters_as_fmn3_does(api_settings: Settings) -> None:
    """Spec diffs and generated clients match operations by path template: FMN 3's are
    `{username}` and `{id}`."""
    from fmn.api.app import create_app

    paths = create_app(api_settings).openapi()["paths"]
    rule = paths["/api/v1/users/{username}/rules/{id}"]
    assert {"get", "put", "delete"} <= set(rule)
    assert [p["name"] for p in rule["get"]["parameters"] if p["in"] == "path"] == [
        "username",
        "id",
    ]
    assert "patch" in paths["/api/v1/admin/rules/{id}"]
    assert not [path for path in paths if "rule_id" in path]


@pytest.mark.parametrize("with_web_app", [False, True], ids=["fmn api", "fmn run"])
async def test_docs_where_fmn3_links_leads_to_the_api_documentation(
    make_app: Any, api_settings: Settings, tmp_path: Path, with_web_app: bool
) -> None:
    """FMN 3's footer links the API documentation at <server>/docs (FastAPI's default)."""
    (tmp_path / "index.html").write_text("<html>fmn</html>")
    frontend = str(tmp_path) if with_web_app else "/nonexistent"
    app = await make_app(with_api(api_settings, frontend_dir=frontend))
    async with client_for(app) as http:
        docs = await http.get("/docs", follow_redirects=True)
        assert docs.status_code == 200
        assert docs.url.path == "/api/v1/docs"
        assert "swagger-ui" in docs.text and "/api/v1/openapi.json" in docs.text
        document = await http.get("/openapi.json", follow_redirects=True)
        assert document.json()["paths"]["/api/v1/users/{username}/rules/{id}"]

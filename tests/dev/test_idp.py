"""The built-in OIDC provider, through HTTP on an in-process app: the authorization code flow with
PKCE as a browser and oidc-client-ts drive it, and what it refuses."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oidc.discovery import OpenIDProviderMetadata
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import KeySet

from fmn.dev.idp import Client, IdentityProvider, SampleUser
from fmn.dev.idp_http import make_idp_router

BASE = "http://127.0.0.1:8080"
ISSUER = f"{BASE}/idp"
CALLBACK = f"{BASE}/login/callback"
ALICE = SampleUser("alice", "Alice Anderson", "alice@example.org", ("packager", "sysadmin-main"))


class Clock:
    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def provider(clock: Clock) -> IdentityProvider:
    return IdentityProvider(
        ISSUER,
        [ALICE, SampleUser("bob", "Bob <b>", "bob@example.org")],
        [
            Client("fmn-frontend", None, frozenset({BASE})),
            Client("fmn", "api-secret", grant_types=()),
        ],
        extra_scopes=["https://id.fedoraproject.org/scope/groups"],
        clock=clock,
    )


@pytest.fixture
async def http(provider: IdentityProvider) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.include_router(make_idp_router(provider, "/idp"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def auth_params(challenge: str, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": "fmn-frontend",
        "redirect_uri": CALLBACK,
        "scope": "openid profile email https://id.fedoraproject.org/scope/groups",
        "state": "st4te",
        "nonce": "n0nce",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }


async def login(http: httpx.AsyncClient, challenge: str, username: str = "alice") -> str:
    """The login page, then the click on a user: the code the app's callback receives."""
    params = auth_params(challenge)
    page = await http.get("/idp/authorize", params=params)
    assert page.status_code == 200
    assert 'value="alice"' in page.text
    assert "Bob &lt;b&gt;" in page.text  # escaped
    answer = await http.post("/idp/authorize", data={**params, "username": username})
    assert answer.status_code == 302
    location = urlsplit(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == CALLBACK
    query = parse_qs(location.query)
    assert query["state"] == ["st4te"]
    return query["code"][0]


async def exchange(http: httpx.AsyncClient, code: str, verifier: str) -> httpx.Response:
    return await http.post(
        "/idp/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "client_id": "fmn-frontend",
            "code_verifier": verifier,
        },
    )


async def test_discovery_names_every_endpoint(http: httpx.AsyncClient) -> None:
    doc = (await http.get("/idp/.well-known/openid-configuration")).json()
    assert doc["issuer"] == ISSUER
    for key in ("authorization", "token", "userinfo", "introspection", "end_session"):
        assert doc[f"{key}_endpoint"].startswith(ISSUER + "/")
    assert doc["code_challenge_methods_supported"] == ["S256"]


async def test_code_flow_with_pkce_gives_tokens_userinfo_and_introspection(
    http: httpx.AsyncClient,
) -> None:
    verifier, challenge = pkce()
    code = await login(http, challenge)
    answer = await exchange(http, code, verifier)
    assert answer.status_code == 200, answer.text
    tokens = answer.json()
    assert tokens["token_type"].lower() == "bearer"
    assert tokens["refresh_token"]

    keys = KeySet.import_key_set((await http.get("/idp/jwks")).json())
    id_token = jwt.decode(tokens["id_token"], keys, algorithms=["RS256"])
    assert id_token.claims["iss"] == ISSUER
    assert id_token.claims["aud"] == "fmn-frontend"
    assert id_token.claims["nonce"] == "n0nce"
    assert id_token.claims["sub"] == "alice"

    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    info = (await http.get("/idp/userinfo", headers=bearer)).json()
    assert info["nickname"] == "alice"
    assert info["email"] == "alice@example.org"
    assert info["groups"] == ["packager", "sysadmin-main"]

    introspected = await http.post(
        "/idp/introspect", data={"token": tokens["access_token"]}, auth=("fmn", "api-secret")
    )
    assert introspected.json()["active"] is True
    assert introspected.json()["username"] == "alice"
    assert introspected.json()["groups"] == ["packager", "sysadmin-main"]
    unknown = await http.post("/idp/introspect", data={"token": "nope"}, auth=("fmn", "api-secret"))
    assert unknown.json() == {"active": False}
    wrong_secret = await http.post(
        "/idp/introspect", data={"token": tokens["access_token"]}, auth=("fmn", "wrong")
    )
    assert wrong_secret.status_code == 401


async def test_refresh_token_gives_new_tokens_and_retires_the_old_ones(
    http: httpx.AsyncClient,
) -> None:
    verifier, challenge = pkce()
    tokens = (await exchange(http, await login(http, challenge), verifier)).json()
    refresh = {
        "grant_type": "refresh_token",
        "refresh_token": tokens["refresh_token"],
        "client_id": "fmn-frontend",
    }
    refreshed = await http.post("/idp/token", data=refresh)
    assert refreshed.status_code == 200, refreshed.text
    new = refreshed.json()
    assert new["access_token"] != tokens["access_token"]
    old = await http.get(
        "/idp/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert old.status_code == 401
    again = await http.post("/idp/token", data=refresh)
    assert again.status_code == 400


async def test_a_pkce_mismatch_is_refused(http: httpx.AsyncClient) -> None:
    _, challenge = pkce()
    other_verifier, _ = pkce()
    answer = await exchange(http, await login(http, challenge), other_verifier)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


async def test_a_public_client_without_pkce_is_refused(http: httpx.AsyncClient) -> None:
    params = auth_params("x")
    del params["code_challenge"], params["code_challenge_method"]
    answer = await http.get("/idp/authorize", params=params)
    assert answer.status_code == 302
    assert parse_qs(urlsplit(answer.headers["location"]).query)["error"] == ["invalid_request"]


async def test_plain_pkce_is_refused(http: httpx.AsyncClient) -> None:
    verifier, _ = pkce()
    params = auth_params(verifier, code_challenge_method="plain")
    answer = await http.get("/idp/authorize", params=params)
    assert parse_qs(urlsplit(answer.headers["location"]).query)["error"] == ["invalid_request"]


async def test_an_unknown_client_is_refused_without_a_redirect(http: httpx.AsyncClient) -> None:
    _, challenge = pkce()
    answer = await http.get("/idp/authorize", params=auth_params(challenge, client_id="evil"))
    assert answer.status_code == 400
    assert "location" not in answer.headers
    assert "does not exist" in answer.text


async def test_a_foreign_redirect_uri_is_refused_without_a_redirect(
    http: httpx.AsyncClient,
) -> None:
    _, challenge = pkce()
    params = auth_params(challenge, redirect_uri="https://evil.example/cb")
    answer = await http.get("/idp/authorize", params=params)
    assert answer.status_code == 400
    assert "location" not in answer.headers


async def test_an_expired_code_is_refused(http: httpx.AsyncClient, clock: Clock) -> None:
    verifier, challenge = pkce()
    code = await login(http, challenge)
    clock.now += 3600
    answer = await exchange(http, code, verifier)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


async def test_a_code_is_good_once(http: httpx.AsyncClient) -> None:
    verifier, challenge = pkce()
    code = await login(http, challenge)
    assert (await exchange(http, code, verifier)).status_code == 200
    assert (await exchange(http, code, verifier)).status_code == 400


async def test_silent_login_needs_a_session_and_logout_ends_it(http: httpx.AsyncClient) -> None:
    _, challenge = pkce()
    silent = auth_params(challenge, prompt="none")
    refused = await http.get("/idp/authorize", params={**silent, "nonce": "a third"})
    assert parse_qs(urlsplit(refused.headers["location"]).query)["error"] == ["login_required"]

    await login(http, challenge)  # sets the provider's session cookie
    answer = await http.get("/idp/authorize", params={**silent, "nonce": "another"})
    assert "code" in parse_qs(urlsplit(answer.headers["location"]).query)

    out = await http.get(
        "/idp/logout",
        params={"client_id": "fmn-frontend", "post_logout_redirect_uri": f"{BASE}/"},
    )
    assert out.status_code == 302
    assert out.headers["location"] == f"{BASE}/"
    refused = await http.get("/idp/authorize", params={**silent, "nonce": "a third"})
    assert parse_qs(urlsplit(refused.headers["location"]).query)["error"] == ["login_required"]


async def test_logout_with_the_id_token_returns_to_the_app(http: httpx.AsyncClient) -> None:
    """As oidc-client-ts logs out: id_token_hint and post_logout_redirect_uri, no client_id."""
    verifier, challenge = pkce()
    tokens = (await exchange(http, await login(http, challenge), verifier)).json()
    out = await http.get(
        "/idp/logout",
        params={"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": f"{BASE}/"},
    )
    assert out.status_code == 302
    assert out.headers["location"] == f"{BASE}/"
    elsewhere = await http.get(
        "/idp/logout",
        params={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": "https://x.example/",
        },
    )
    assert elsewhere.status_code == 200
    assert "location" not in elsewhere.headers


async def test_discovery_is_complete_for_generic_clients(http: httpx.AsyncClient) -> None:
    """Valid by authlib's metadata models, and every optional field whose default would
    misdescribe the provider (request_uri_parameter_supported defaults to true) is stated."""
    doc = (await http.get("/idp/.well-known/openid-configuration")).json()
    OpenIDProviderMetadata(doc).validate()
    assert doc["request_uri_parameter_supported"] is False
    assert doc["request_parameter_supported"] is False
    assert doc["claims_parameter_supported"] is False
    assert set(doc["introspection_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
    }
    assert "none" in doc["revocation_endpoint_auth_methods_supported"]
    assert "none" in doc["prompt_values_supported"]
    assert {"sub", "nickname", "email", "groups", "auth_time", "nonce"} <= set(
        doc["claims_supported"]
    )


def generic_client(http: httpx.AsyncClient, **options: Any) -> AsyncOAuth2Client:
    """authlib's OAuth 2 client, as any relying party would configure it: a public client
    with PKCE (S256), on the in-process app's transport."""
    return AsyncOAuth2Client(
        client_id="fmn-frontend",
        token_endpoint_auth_method="none",
        redirect_uri=CALLBACK,
        scope="openid profile email",
        code_challenge_method="S256",
        transport=http._transport,
        base_url=BASE,
        **options,
    )


async def browser_login(http: httpx.AsyncClient, authorization_url: str) -> str:
    """What a browser does with the login page: picks alice; the redirect it is sent to."""
    page = await http.get(authorization_url)
    assert page.status_code == 200, page.text
    params = dict(parse_qs(urlsplit(authorization_url).query, keep_blank_values=True))
    form = {name: values[0] for name, values in params.items()}
    answer = await http.post("/idp/authorize", data={**form, "username": "alice"})
    assert answer.status_code == 302, answer.text
    location: str = answer.headers["location"]
    return location


async def test_a_generic_oidc_client_logs_in_and_reads_userinfo_by_get_and_post(
    http: httpx.AsyncClient,
) -> None:
    """The authorization code flow with PKCE driven by authlib's client from the discovery
    document, then userinfo as clients call it: GET with the token in the Authorization
    header, POST with it in the header, POST with it in a form body (RFC 6750 §2.2, as FMN 3's
    web app through AppAuth-JS and as Ipsilon accepts)."""
    doc = (await http.get("/idp/.well-known/openid-configuration")).json()
    verifier = generate_token(48)
    async with generic_client(http) as client:
        url, state = client.create_authorization_url(
            doc["authorization_endpoint"], code_verifier=verifier, nonce="n0nce"
        )
        callback = await browser_login(http, url)
        assert parse_qs(urlsplit(callback).query)["state"] == [state]
        token = await client.fetch_token(
            doc["token_endpoint"], authorization_response=callback, code_verifier=verifier
        )
        keys = KeySet.import_key_set((await http.get(doc["jwks_uri"])).json())
        claims = jwt.decode(token["id_token"], keys, algorithms=["RS256"]).claims
        assert (claims["iss"], claims["aud"], claims["sub"]) == (
            doc["issuer"],
            "fmn-frontend",
            "alice",
        )
        assert claims["nonce"] == "n0nce"

        by_get = await client.get(doc["userinfo_endpoint"])
        by_post = await client.post(doc["userinfo_endpoint"])
    async with generic_client(http, token=token, token_placement="body") as in_body:
        by_form = await in_body.post(
            doc["userinfo_endpoint"],
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    for answer in (by_get, by_post, by_form):
        assert answer.status_code == 200, answer.text
        assert answer.json()["sub"] == "alice"
        assert answer.json()["email"] == "alice@example.org"
        assert answer.json()["groups"] == ["packager", "sysadmin-main"]


async def test_userinfo_takes_the_token_from_one_place_only(http: httpx.AsyncClient) -> None:
    verifier, challenge = pkce()
    access = (await exchange(http, await login(http, challenge), verifier)).json()["access_token"]
    form = await http.post("/idp/userinfo", data={"access_token": access})
    assert form.status_code == 200 and form.json()["sub"] == "alice"
    both = await http.post(
        "/idp/userinfo",
        data={"access_token": access},
        headers={"Authorization": f"Bearer {access}"},
    )
    assert both.status_code == 400 and both.json()["error"] == "invalid_request"
    wrong = await http.post("/idp/userinfo", data={"access_token": "forged"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_token"
    # RFC 6750 §2.2: a form body, never a query string or a GET.
    query = await http.get("/idp/userinfo", params={"access_token": access})
    assert query.status_code == 401

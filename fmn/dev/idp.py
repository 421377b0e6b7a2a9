"""A built-in OpenID Connect provider for the embedded default, on authlib's server classes:
authorization code with PKCE (S256 only, required of public clients), refresh tokens (rotated),
an RS256-signed id_token, userinfo, RFC 7662 introspection, RFC 7009 revocation and
RP-initiated logout. Sample users log in by picking their name: there are no passwords, and
everything lives in memory for the life of the process. Never for production.

The HTTP side (routes, the login page) is in fmn.dev.idp_http; this module is the protocol.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from authlib.common.security import generate_token
from authlib.oauth2 import AuthorizationServer, OAuth2Request, ResourceProtector
from authlib.oauth2.rfc6749 import ClientMixin, InvalidRequestError, TokenMixin, grants
from authlib.oauth2.rfc6749.requests import OAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator, BearerTokenValidator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.core import AuthorizationCodeMixin, OpenIDCode, UserInfo
from authlib.oidc.rpinitiated import EndSessionEndpoint
from joserfc.jwk import KeySet, RSAKey
from starlette.responses import Response

Clock = Callable[[], float]

# Lifetimes in seconds: codes are short-lived (RFC 6749 recommends at most 10 minutes).
CODE_TTL = 120
ACCESS_TOKEN_TTL = 3600
REFRESH_TOKEN_TTL = 7 * 24 * 3600
BASE_SCOPES = ("openid", "profile", "email", "groups", "offline_access")


@dataclass(frozen=True)
class SampleUser:
    username: str
    name: str
    email: str
    groups: tuple[str, ...] = ()


@dataclass
class Client(ClientMixin):  # type: ignore[misc]
    """A registered client. Without a secret it is public and must use PKCE."""

    client_id: str
    client_secret: str | None
    # Origins ("http://127.0.0.1:8080") whose URLs may receive codes and logout redirects.
    origins: frozenset[str] = frozenset()
    grant_types: tuple[str, ...] = ("authorization_code", "refresh_token")
    scopes: frozenset[str] = frozenset(BASE_SCOPES)

    @property
    def client_metadata(self) -> dict[str, Any]:
        return {"post_logout_redirect_uris": [f"{origin}/" for origin in sorted(self.origins)]}

    @property
    def public(self) -> bool:
        return self.client_secret is None

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        return " ".join(s for s in (scope or "").split() if s in self.scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        parts = urlsplit(redirect_uri)
        return not parts.fragment and f"{parts.scheme}://{parts.netloc}" in self.origins

    def check_client_secret(self, client_secret: str) -> bool:
        return self.client_secret is not None and secrets.compare_digest(
            self.client_secret.encode(), client_secret.encode()
        )

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.public:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


@dataclass
class AuthorizationCode(AuthorizationCodeMixin):  # type: ignore[misc]
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: SampleUser
    expires_at: float
    auth_time: int
    nonce: str | None = None
    code_challenge: str | None = None
    code_challenge_method: str | None = None

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str | None:
        return None

    def get_amr(self) -> list[str] | None:
        return None


@dataclass
class Token(TokenMixin):  # type: ignore[misc]
    access_token: str
    refresh_token: str | None
    client: Client
    user: SampleUser
    scope: str
    issued_at: float
    expires_in: int
    clock: Clock = field(repr=False)
    revoked: bool = False

    def check_client(self, client: ClientMixin) -> bool:
        return bool(self.client.client_id == client.get_client_id())

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:
        return self.clock() >= self.issued_at + self.expires_in

    def refresh_expired(self) -> bool:
        return self.clock() >= self.issued_at + REFRESH_TOKEN_TTL

    def is_revoked(self) -> bool:
        return self.revoked

    def get_user(self) -> SampleUser:
        return self.user

    def get_client(self) -> Client:
        return self.client


class _Payload(OAuth2Payload):  # type: ignore[misc]
    """Query and form parameters together, first value first (as Flask's request.values)."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._datalist: dict[str, list[str]] = {}
        for key, value in items:
            self._datalist.setdefault(key, []).append(value)
        self._data = {key: values[0] for key, values in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> dict[str, list[str]]:
        return self._datalist


class Request(OAuth2Request):  # type: ignore[misc]
    """An HTTP request as authlib reads it, built once the body has been read."""

    def __init__(
        self,
        method: str,
        uri: str,
        headers: Any,
        query: list[tuple[str, str]],
        form: list[tuple[str, str]],
    ) -> None:
        super().__init__(method, uri, headers=headers)
        self._args = dict(query)
        self._form = dict(form)
        self.payload = _Payload(query + form)

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


class _Server(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, provider: IdentityProvider) -> None:
        super().__init__(scopes_supported=sorted(provider.scopes))
        self.provider = provider

    def query_client(self, client_id: str) -> Client | None:
        return self.provider.clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        self.provider.save_token(token, request.client, request.user)

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if not isinstance(request, OAuth2Request):
            raise TypeError("pass a fmn.dev.idp.Request")
        return request

    def handle_response(self, status: int, body: Any, headers: Iterable[tuple[str, str]]) -> Any:
        content = json.dumps(body) if isinstance(body, dict) else body
        return Response(content, status_code=status, headers=dict(headers))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None


class _S256Challenge(CodeChallenge):  # type: ignore[misc]
    """PKCE with S256 only; public clients must send a challenge."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if grant.request.client.public and not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send a 'code_challenge'")
        super().validate_code_challenge(grant, redirect_uri)
        if data.get("code_challenge") and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256")


class _CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
    server: _Server

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        provider = self.server.provider
        data = request.payload.data
        now = provider.clock()
        provider.codes[code] = AuthorizationCode(
            code=code,
            client_id=request.client.client_id,
            redirect_uri=data.get("redirect_uri", ""),
            scope=request.scope,
            user=request.user,
            expires_at=now + provider.code_ttl,
            auth_time=int(now),
            nonce=data.get("nonce"),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
        )

    def query_authorization_code(self, code: str, client: Client) -> AuthorizationCode | None:
        provider = self.server.provider
        item = provider.codes.get(code)
        if item is None or item.client_id != client.client_id:
            return None
        if provider.clock() >= item.expires_at:
            provider.codes.pop(code, None)
            return None
        return item

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        self.server.provider.codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: AuthorizationCode) -> SampleUser:
        return authorization_code.user


class _RefreshGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
    INCLUDE_NEW_REFRESH_TOKEN = True
    server: _Server

    def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
        token = self.server.provider.by_refresh.get(refresh_token)
        if token is None or token.revoked or token.refresh_expired():
            return None
        return token

    def authenticate_user(self, refresh_token: Token) -> SampleUser:
        return refresh_token.user

    def revoke_old_credential(self, refresh_token: Token) -> None:
        refresh_token.revoked = True


class _OpenIDCode(OpenIDCode):  # type: ignore[misc]
    def __init__(self, provider: IdentityProvider) -> None:
        super().__init__(require_nonce=False)
        self.provider = provider

    def resolve_client_private_key(self, client: Client) -> RSAKey:
        return self.provider.key

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        # A single audience as a string: RP-initiated logout finds the client from it.
        return {"iss": self.provider.issuer, "aud": client.client_id}

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        client_id = request.payload.client_id
        return any(
            c.nonce == nonce and c.client_id == client_id for c in self.provider.codes.values()
        )

    def generate_user_info(self, user: SampleUser, scope: str) -> UserInfo:
        return self.provider.user_info(user, scope)


class _TokenEndpointMixin:
    server: _Server

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        provider = self.server.provider
        hint = token_type_hint or "any"
        if hint in ("any", "access_token") and token_string in provider.by_access:
            return provider.by_access[token_string]
        if hint in ("any", "refresh_token"):
            return provider.by_refresh.get(token_string)
        return None


class _Introspection(_TokenEndpointMixin, IntrospectionEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
    # Refresh tokens are the web app's alone; the API introspects access tokens.
    SUPPORTED_TOKEN_TYPES = ("access_token",)

    def check_permission(self, token: Token, client: Client, request: OAuth2Request) -> bool:
        return not client.public

    def introspect_token(self, token: Token) -> dict[str, Any]:
        return {
            "active": True,
            "client_id": token.client.client_id,
            "token_type": "Bearer",
            "username": token.user.username,
            "sub": token.user.username,
            "scope": token.scope,
            "groups": list(token.user.groups),
            "iss": self.server.provider.issuer,
            "iat": int(token.issued_at),
            "exp": int(token.issued_at + token.expires_in),
        }


class _Revocation(_TokenEndpointMixin, RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def revoke_token(self, token: Token, request: OAuth2Request) -> None:
        token.revoked = True


class _EndSession(EndSessionEndpoint):  # type: ignore[misc]
    server: _Server

    def get_server_jwks(self) -> KeySet:
        return KeySet([self.server.provider.key])

    def is_post_logout_redirect_uri_legitimate(self, *args: Any) -> bool:
        # Dev only: the registered URIs are the app's own pages, so no confirmation is needed.
        return True

    def end_session(self, end_session_request: Any) -> None:
        return None  # the HTTP layer drops the login cookie


class _AccessTokens(BearerTokenValidator):  # type: ignore[misc]
    def __init__(self, provider: IdentityProvider) -> None:
        super().__init__()
        self.provider = provider

    def authenticate_token(self, token_string: str) -> Token | None:
        return self.provider.by_access.get(token_string)


class _Protector(ResourceProtector):  # type: ignore[misc]
    """The access token from the Authorization header (RFC 6750 §2.1) or from a form-encoded
    body (§2.2): FMN 3's web app (AppAuth-JS) POSTs it to userinfo that way, and Ipsilon
    accepts it. authlib reads only the header."""

    def parse_request_authorization(self, request: Request) -> tuple[Any, str]:
        in_body = request.method != "GET" and request.headers.get("Content-Type", "").startswith(
            "application/x-www-form-urlencoded"
        )
        body_token = request.form.get("access_token") if in_body else None
        if body_token is None:
            return super().parse_request_authorization(request)  # type: ignore[no-any-return]
        if request.headers.get("Authorization"):
            raise InvalidRequestError(
                "send the access token in one place only (RFC 6750, section 2)"
            )
        return self.get_token_validator("bearer"), body_token


class IdentityProvider:
    """The provider's state and its authlib server. `issuer` is the URL it is served at."""

    def __init__(
        self,
        issuer: str,
        users: Iterable[SampleUser],
        clients: Iterable[Client],
        *,
        extra_scopes: Iterable[str] = (),
        clock: Clock = time.time,
        code_ttl: float = CODE_TTL,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.users = {u.username: u for u in users}
        self.scopes = frozenset(BASE_SCOPES) | frozenset(extra_scopes)
        self.clients = {c.client_id: replace(c, scopes=self.scopes) for c in clients}
        self.clock = clock
        self.code_ttl = code_ttl
        self.codes: dict[str, AuthorizationCode] = {}
        self.by_access: dict[str, Token] = {}
        self.by_refresh: dict[str, Token] = {}
        # Login sessions of the provider itself (a cookie), for prompt=none and switching users.
        self.sessions: dict[str, str] = {}
        self.key = RSAKey.generate_key(
            2048, parameters={"kid": generate_token(12), "use": "sig", "alg": "RS256"}
        )
        self.server = self._build_server()
        self.protector = _Protector()
        self.protector.register_token_validator(_AccessTokens(self))

    def _build_server(self) -> _Server:
        server = _Server(self)
        server.register_token_generator(
            "default",
            BearerTokenGenerator(
                access_token_generator=lambda **_: generate_token(42),
                refresh_token_generator=lambda **_: generate_token(48),
                expires_generator=lambda client, grant_type: ACCESS_TOKEN_TTL,
            ),
        )
        server.register_grant(_CodeGrant, [_S256Challenge(required=True), _OpenIDCode(self)])
        server.register_grant(_RefreshGrant)
        server.register_endpoint(_Introspection)
        server.register_endpoint(_Revocation)
        server.register_endpoint(_EndSession)
        return server

    def save_token(self, token: dict[str, Any], client: Client, user: SampleUser) -> None:
        saved = Token(
            access_token=token["access_token"],
            refresh_token=token.get("refresh_token"),
            client=client,
            user=user,
            scope=token.get("scope", ""),
            issued_at=self.clock(),
            expires_in=int(token.get("expires_in", ACCESS_TOKEN_TTL)),
            clock=self.clock,
        )
        self.by_access[saved.access_token] = saved
        if saved.refresh_token:
            self.by_refresh[saved.refresh_token] = saved

    def user_info(self, user: SampleUser, scope: str) -> UserInfo:
        """The claims: FASJSON-like (Ipsilon's nickname) and the usual ones, groups always."""
        scopes = set(scope.split())
        info = UserInfo(sub=user.username, groups=list(user.groups))
        if "profile" in scopes:
            info.update(nickname=user.username, preferred_username=user.username, name=user.name)
        if "email" in scopes:
            info.update(email=user.email, email_verified=True)
        return info

    def discovery(self) -> dict[str, Any]:
        base = self.issuer
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "userinfo_endpoint": f"{base}/userinfo",
            "jwks_uri": f"{base}/jwks",
            "introspection_endpoint": f"{base}/introspect",
            "revocation_endpoint": f"{base}/revoke",
            "end_session_endpoint": f"{base}/logout",
            "scopes_supported": sorted(self.scopes),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": [
                "none",
                "client_secret_basic",
                "client_secret_post",
            ],
            "introspection_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
            ],
            "revocation_endpoint_auth_methods_supported": [
                "none",
                "client_secret_basic",
                "client_secret_post",
            ],
            "code_challenge_methods_supported": ["S256"],
            "prompt_values_supported": ["none", "login"],
            "display_values_supported": ["page"],
            "claim_types_supported": ["normal"],
            "claims_supported": [
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "sub",
                "name",
                "nickname",
                "preferred_username",
                "email",
                "email_verified",
                "groups",
            ],
            # Stated because a missing request_uri_parameter_supported means true.
            "claims_parameter_supported": False,
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "frontchannel_logout_supported": False,
            "backchannel_logout_supported": False,
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.as_dict(private=False)]}

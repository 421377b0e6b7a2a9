"""Security headers on every answer of the API and the web app: a Content-Security-Policy
without inline script or style, no framing (clickjacking), no referrer to other sites, no MIME
sniffing, and HSTS when the public URL is https. A pure ASGI middleware: the headers are made
once, and each response only gets them appended."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fmn.api.middleware import HTTPMiddleware

# FastAPI's interactive API documentation is a page with one inline script and Swagger UI's
# files from a CDN: it alone gets a policy that allows them.
_DOCS_SOURCES = "https://cdn.jsdelivr.net"


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def content_security_policy(identity_provider: str, *, docs: bool = False) -> str:
    """The web app talks to its own origin and to the identity provider (discovery, token,
    userinfo from the browser); scripts and styles are its own files only."""
    provider = _origin(identity_provider)
    connect = " ".join(filter(None, ["'self'", provider]))
    script = f"'self' 'unsafe-inline' {_DOCS_SOURCES}" if docs else "'self'"
    style = f"'self' {_DOCS_SOURCES}" if docs else "'self'"
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src {script}",
            f"style-src {style}",
            "img-src 'self' data:",
            f"connect-src {connect}",
            "object-src 'none'",
            "base-uri 'self'",
            f"form-action {connect}",
            "frame-ancestors 'none'",
        ]
    )


class SecurityHeaders(HTTPMiddleware):
    def __init__(
        self,
        app: ASGIApp,
        *,
        public_url: str,
        identity_provider: str,
        docs_path: str | None = None,
    ) -> None:
        super().__init__(app)
        common = [
            (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
        ]
        if public_url.startswith("https://"):
            common.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
        policy = content_security_policy(identity_provider)
        docs_policy = content_security_policy(identity_provider, docs=True)
        self.headers = [*common, (b"content-security-policy", policy.encode())]
        self.docs_headers = [*common, (b"content-security-policy", docs_policy.encode())]
        self.docs_path = docs_path

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        extra = self.docs_headers if scope["path"] == self.docs_path else self.headers

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)

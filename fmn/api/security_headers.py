"""Security headers on every answer of the API and the web app: a Content-Security-Policy
without inline script or style, no framing (clickjacking), no referrer to other sites, no MIME
sniffing, and HSTS when the public URL is https. The headers are made once; the API's outermost
middleware (`fmn.api.edge.Edge`) appends them to each response."""

from __future__ import annotations

from urllib.parse import urlsplit

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


class SecurityHeaders:
    def __init__(
        self,
        *,
        public_url: str,
        identity_provider: str,
        docs_path: str | None = None,
    ) -> None:
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

    def for_path(self, path: str) -> list[tuple[bytes, bytes]]:
        return self.docs_headers if path == self.docs_path else self.headers

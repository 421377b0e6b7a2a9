"""Web Push endpoints reach public hosts only: a subscription names any URL, and the web sender
POSTs to it, so an endpoint on a private, loopback, link-local or reserved address would let a
user make the server call its own network (SSRF). The API refuses such an endpoint when it is
subscribed; the web sender checks every address it connects to again (DNS may have changed
since), on redirects too, and connects only to the addresses it checked
(fmn.inbox.push.PublicOnlyConnector).

`web.push_allow_private_hosts` turns both off, for a push-service stand-in on the development
machine or in the tests only.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

LOOKUP_SECONDS = 5.0  # a subscription waits no longer for DNS


class RefusedHost(OSError):
    """The endpoint's host is no public address (an OSError, so that aiohttp reports it as a
    connection error when the sender's connector raises it)."""


def is_public(address: str) -> bool:
    """Whether an IP address is one of the public internet's (not private, loopback, link-local,
    shared, reserved, unspecified or multicast)."""
    ip = ipaddress.ip_address(address.partition("%")[0])  # an IPv6 scope is no part of it
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1 once connected
    return ip.is_global and not ip.is_multicast


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


async def check_host(host: str, port: int) -> None:
    """RefusedHost if `host` is an IP address that is not public, or a name whose addresses are
    none of them public. A name that does not resolve now (or not within LOOKUP_SECONDS) passes:
    nothing can be sent to it, and the sender checks again."""
    literal = _literal(host)
    if literal is not None:
        if not is_public(literal):
            raise RefusedHost(f"{host} is not a public address")
        return
    try:
        async with asyncio.timeout(LOOKUP_SECONDS):
            loop = asyncio.get_running_loop()
            found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, TimeoutError):
        return
    addresses = sorted({str(info[4][0]) for info in found})
    if addresses and not any(is_public(a) for a in addresses):
        raise RefusedHost(f"{host} resolves only to addresses that are not public: {addresses}")

"""The SSRF guard of outbound action requests.

A target may only reach public addresses: private (RFC 1918, fc00::/7),
loopback, link-local (169.254.0.0/16 with the cloud metadata endpoints,
fe80::/10), shared (100.64.0.0/10), multicast, reserved and unspecified
addresses are refused, unless the host is listed in
`Actions.HTTP.AllowedHosts` (a host name, an IP address or a CIDR network).

The host is resolved once, every address it resolves to is checked, and the
request then connects to the checked address (the Host header and TLS server
name stay the host's), so a DNS answer that changes between the check and
the connection (DNS rebinding) cannot reach another address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedAddress(Exception):
    """The target's host is, or resolves to, an address actions may not reach."""


def _ip(text: str) -> IPAddress | None:
    try:
        ip = ipaddress.ip_address(text.strip("[]").split("%")[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_public(ip: IPAddress) -> bool:
    """Whether `ip` is a globally routable unicast address."""
    return ip.is_global and not ip.is_multicast


def host_allowed(host: str, ip: IPAddress | None, allowed: Iterable[str]) -> bool:
    """Whether `AllowedHosts` lists `host` (by name) or `ip` (exactly or in a network)."""
    host = host.lower().rstrip(".")
    for entry in allowed:
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry == host:
            return True
        if ip is None:
            continue
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def literal_problem(host: str, allowed: Iterable[str]) -> str | None:
    """Why an endpoint whose host is an IP literal is refused (None: not refused here).

    Host names are checked when a request is made, as their addresses may change.
    """
    ip = _ip(host)
    if ip is None or is_public(ip) or host_allowed(host, ip, allowed):
        return None
    return (
        f"{host} is not a public address; list it in Actions.HTTP.AllowedHosts"
        " to let targets reach it"
    )


async def resolve_checked(host: str, port: int, allowed: Iterable[str]) -> str:
    """The address to connect to for `host`, every resolved address checked.

    Raises BlockedAddress when the host resolves to an address that is not
    public and not allowed, or does not resolve.
    """
    allowed = list(allowed)
    ip = _ip(host)
    if ip is not None:
        addresses = [ip]
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise BlockedAddress(f"{host} does not resolve: {exc.strerror}") from None
        addresses = []
        for info in infos:
            resolved = _ip(str(info[4][0]))
            if resolved is not None and resolved not in addresses:
                addresses.append(resolved)
        if not addresses:
            raise BlockedAddress(f"{host} does not resolve")
    for address in addresses:
        if not is_public(address) and not host_allowed(host, address, allowed):
            raise BlockedAddress(
                f"{host} resolves to {address}, which is not a public address"
                " (allow it in Actions.HTTP.AllowedHosts)"
            )
    return str(addresses[0])

"""The client's address: the direct peer, or X-Forwarded-For only when the peer is a trusted proxy."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.requests import Request

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Sequence[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())


def _trusted(address: str, proxies: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_ip(request: Request, trusted_proxies: Sequence[Network]) -> str | None:
    peer = request.client.host if request.client else None
    if peer is None or not trusted_proxies or not _trusted(peer, trusted_proxies):
        return peer
    # Walk X-Forwarded-For from the right: the first address not of a trusted proxy is the client.
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted_proxies):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer
    return hops[0] if hops else peer


def client_network(address: str) -> str:
    """Whom a per-client limit counts: an IPv4 address, or an IPv6 client's /64.

    An IPv6 subscriber is given at least a /64 and can use any address in it, so limiting by full
    address would give one client 2**64 budgets. An IPv4-mapped IPv6 address counts as its IPv4.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)

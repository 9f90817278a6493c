"""Outbound requests to customer-supplied URLs that never reach loopback, private or metadata addresses.

Webhook deliveries and agent fetches go to URLs our customers choose. A URL is checked twice: its
syntax at the time it is given to us (`check_url`), and its resolved addresses right before each
request (`guarded_request` for httpx, `GuardedResolver` for aiohttp). The request then connects to
the very address that was checked (the host name travels in the Host header and as the TLS server
name), so a DNS answer that changes between the check and the connection (rebinding) cannot
redirect it. Redirects are never followed implicitly: a caller that wants them gets each hop
checked again.

No library we use does this pinning for httpx: it resolves names itself inside its transport, so the
check has to sit in front of it. aiohttp takes a resolver instead (`GuardedResolver`): webhook
attempts go through it (`customer_session`), and connect only to the addresses it returned and checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import socket
import ssl
from typing import Any

import aiohttp
import certifi
import httpx


class BlockedTarget(ValueError):
    """The URL is malformed, not http(s), or resolves to an address we never connect to."""


class Unresolvable(BlockedTarget):
    """The host name does not resolve (now)."""


# IPv6 addresses that carry an IPv4 address, judged by that address: IPv4-mapped (::ffff:0:0/96),
# 6to4 (2002::/16, RFC 3056) and the well-known NAT64 prefix (64:ff9b::/96, RFC 6052, the IPv4 address in
# the low 32 bits). `2002:7f00:1::` is 127.0.0.1 to a host with a 6to4 relay; `64:ff9b::5db8:d822` is a
# public site seen from an IPv6-only network with DNS64.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Special-purpose ranges (IANA's registries) that Python 3.11's `is_global` still calls global:
# IETF protocol assignments, deprecated site-local IPv6, and local-use NAT64 (RFC 8215, whose IPv4
# position depends on each network's own prefix length).
_NOT_GLOBAL = (
    ipaddress.IPv4Network("192.0.0.0/24"),
    ipaddress.IPv6Network("fec0::/10"),
    ipaddress.IPv6Network("64:ff9b:1::/48"),
)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _blocked(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Only globally routable unicast addresses are allowed; anything else is blocked."""
    if isinstance(address, ipaddress.IPv6Address) and (embedded := _embedded_ipv4(address)) is not None:
        address = embedded
    return not address.is_global or address.is_multicast or any(address in network for network in _NOT_GLOBAL)


def is_public_address(value: str) -> bool:
    try:
        return not _blocked(ipaddress.ip_address(value))
    except ValueError:
        return False


def check_url(url: str, *, allow_private: bool = False, require_https: bool = False) -> httpx.URL:
    """Parse `url` and refuse what can be refused without DNS (scheme, credentials, literal addresses)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise BlockedTarget("The URL is not valid.") from exc
    schemes = ("https",) if require_https else ("http", "https")
    if parsed.scheme not in schemes:
        raise BlockedTarget(f"The URL must use {' or '.join(schemes)}.")
    if not parsed.host:
        raise BlockedTarget("The URL has no host.")
    if parsed.userinfo:
        raise BlockedTarget("The URL must not carry credentials.")
    if not allow_private:
        host = parsed.host
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None and _blocked(literal):
            raise BlockedTarget("The URL points at a private, loopback or link-local address.")
        if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
            raise BlockedTarget("The URL points at a private, loopback or link-local address.")
    return parsed


async def resolve(host: str, port: int, *, allow_private: bool = False) -> str:
    """One address of `host` to connect to; every address it resolves to must be public."""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:  # an address already: no lookup (getaddrinfo runs in a thread)
        if not allow_private and _blocked(literal):
            raise BlockedTarget("The URL resolves to a private, loopback or link-local address.")
        return host
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Unresolvable(f"The host {host!r} does not resolve.") from exc
    addresses = [str(info[4][0]) for info in infos]
    _judge(host, addresses, allow_private=allow_private)
    return addresses[0]


def _judge(host: str, addresses: list[str], *, allow_private: bool) -> None:
    """What `host` resolved to: at least one address, and every one public (unless `allow_private`)."""
    if not addresses:
        raise Unresolvable(f"The host {host!r} does not resolve.")
    if not allow_private and any(not is_public_address(a) for a in addresses):
        raise BlockedTarget("The URL resolves to a private, loopback or link-local address.")


async def check_target(
    url: str, *, allow_private: bool = False, require_https: bool = False, dns_timeout: float = 3.0
) -> httpx.URL:
    """`check_url`, then what the host resolves to now: a name that resolves to a private, loopback or
    link-local address is refused before anything is ever sent to it. A name that does not resolve
    (yet), or not within `dns_timeout`, passes: every request resolves and checks it again."""
    parsed = check_url(url, allow_private=allow_private, require_https=require_https)
    if allow_private:
        return parsed
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    with contextlib.suppress(Unresolvable, TimeoutError):  # not resolvable yet: checked again per request
        async with asyncio.timeout(dns_timeout):
            await resolve(parsed.host, port)
    return parsed


async def guarded_request(
    client: httpx.AsyncClient,
    method: str,
    url: str | httpx.URL,
    *,
    allow_private: bool = False,
    require_https: bool = False,
    stream: bool = False,
    **kwargs: Any,
) -> httpx.Response:
    """Send one request to `url`, connecting only to a checked address. Redirects are returned, not followed.

    With `stream=True` the body is not read: the caller reads (and caps) it, then closes the response.
    """
    parsed = check_url(str(url), allow_private=allow_private, require_https=require_https)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    address = await resolve(parsed.host, port, allow_private=allow_private)
    headers = httpx.Headers(kwargs.pop("headers", None))
    headers["Host"] = parsed.netloc.decode("ascii")
    extensions = dict(kwargs.pop("extensions", None) or {})
    if parsed.scheme == "https":
        extensions["sni_hostname"] = parsed.host
    pinned = parsed.copy_with(host=address)
    request = client.build_request(method, pinned, headers=headers, extensions=extensions, **kwargs)
    return await client.send(request, follow_redirects=False, stream=stream)


async def guarded_get(
    client: httpx.AsyncClient,
    url: str,
    *,
    allow_private: bool = False,
    max_redirects: int = 5,
    stream: bool = False,
    **kwargs: Any,
) -> httpx.Response:
    """GET that follows up to `max_redirects` redirects, checking every hop like the first."""
    current: str | httpx.URL = url
    for _ in range(max_redirects + 1):
        response = await guarded_request(client, "GET", current, allow_private=allow_private, stream=stream, **kwargs)
        location = response.headers.get("location")
        if not response.is_redirect or location is None:
            return response
        await response.aclose()
        current = check_url(str(httpx.URL(str(current)).join(location)), allow_private=allow_private)
    raise BlockedTarget(f"More than {max_redirects} redirects.")


@functools.cache
def _certifi_context() -> ssl.SSLContext:
    """Certificates are verified against certifi's roots, as httpx does (and `customer_client` with it),
    not the operating system's store, which differs from one image to the next. Made once: loading the
    roots takes milliseconds."""
    return ssl.create_default_context(cafile=certifi.where())


class GuardedResolver(aiohttp.ThreadedResolver):
    """aiohttp's resolver for customer URLs: a name must resolve, and to public addresses only, or the
    request fails with `BlockedTarget` before anything is sent. The connector connects to one of the
    addresses returned here, so what was checked is what is reached, and the name itself stays the
    Host header and the TLS server name. (aiohttp skips the resolver for an address in the URL, and
    refuses the legacy numeric IPv4 forms; `check_url` judges such an address before the request.)"""

    def __init__(self, *, allow_private: bool = False) -> None:
        super().__init__()
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[aiohttp.abc.ResolveResult]:
        try:
            found = await super().resolve(host, port, family)
        except (OSError, UnicodeError) as exc:
            raise Unresolvable(f"The host {host!r} does not resolve.") from exc
        _judge(host, [result["host"] for result in found], allow_private=self._allow_private)
        return found


def customer_session(
    timeout: float, *, allow_private: bool = False, max_connections: int = 100
) -> aiohttp.ClientSession:
    """An aiohttp session for customer-chosen URLs, with `GuardedResolver`: call `check_url` on each
    URL before sending to it (scheme, credentials, literal addresses).

    As `customer_client`: no proxy from the environment (aiohttp's default), redirects are the
    caller's to pass (`allow_redirects=False`), and bodies arrive as sent (`auto_decompress=False`,
    `Accept-Encoding: identity`), so that a size cap counts what arrives. Made inside a running event loop.
    """
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(
            limit=max_connections, resolver=GuardedResolver(allow_private=allow_private), ssl=_certifi_context()
        ),
        timeout=aiohttp.ClientTimeout(total=timeout),
        headers={"Accept-Encoding": "identity"},
        auto_decompress=False,
        trust_env=False,
    )


def customer_client(timeout: float, *, max_connections: int = 100) -> httpx.AsyncClient:
    """The httpx client for customer-chosen URLs (agent fetches; webhook attempts use `customer_session`).

    trust_env=False: an HTTP(S)_PROXY in the environment must not carry customer requests
    elsewhere (the proxy, not us, would then resolve and reach the target). Redirects are never
    followed implicitly (see `guarded_get`). Bodies are asked for uncompressed (`Accept-Encoding:
    identity`): a size cap counts what arrives, and a compressed body can expand a thousandfold.
    """
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout),
        headers={"Accept-Encoding": "identity"},
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=20),
        trust_env=False,
        follow_redirects=False,
    )

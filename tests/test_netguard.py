"""Customer URLs never reach loopback, private, link-local or metadata addresses."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from backplane.core.netguard import (
    BlockedTarget,
    check_target,
    check_url,
    customer_session,
    guarded_get,
    guarded_request,
    is_public_address,
    resolve,
)
from tests.fixtures.http_server import LoopbackServer, serve


async def _echo(request: Request) -> Response:
    return PlainTextResponse(f"host={request.headers['host']} path={request.url.path}")


async def _hop(request: Request) -> Response:
    return RedirectResponse(request.query_params["to"], status_code=302)


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    app = Starlette(routes=[Route("/echo", _echo), Route("/hop", _hop)])
    with serve(app, name="netguard-target") as running:
        yield running


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://10.0.0.1/x",
        "http://192.168.1.5/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://0.0.0.0/x",
        "http://localhost/x",
        "http://metadata.google.internal/x",
    ],
)
def test_private_literals_and_names_are_refused_without_dns(url: str) -> None:
    with pytest.raises(BlockedTarget, match="private, loopback or link-local"):
        check_url(url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/x", "must use http or https"),
        ("file:///etc/passwd", "must use http or https"),
        ("https://user:pw@example.com/", "must not carry credentials"),
        ("http:///nohost", "has no host"),
        ("not a url at all", "must use http or https"),
    ],
)
def test_malformed_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(BlockedTarget, match=message):
        check_url(url)


def test_https_can_be_required() -> None:
    with pytest.raises(BlockedTarget, match="must use https"):
        check_url("http://example.com/", require_https=True)
    assert check_url("https://example.com/hook", require_https=True).host == "example.com"


def test_public_addresses() -> None:
    assert is_public_address("93.184.216.34")
    assert is_public_address("2606:4700::1111")
    for blocked in ("127.0.0.1", "10.1.2.3", "172.16.0.1", "100.64.0.1", "169.254.1.1", "fe80::1", "fc00::1", "::"):
        assert not is_public_address(blocked), blocked


@pytest.mark.parametrize(
    "address",
    [
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
        "2002:a9fe:a9fe::",  # 6to4 of 169.254.169.254 (cloud metadata)
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "64:ff9b:1::a00:1",  # local-use NAT64 (RFC 8215) of 10.0.0.1
        "::ffff:10.0.0.1",  # IPv4-mapped
        "fec0::1",  # site-local (deprecated, still routed inside some networks)
        "192.0.0.8",  # IETF protocol assignments (192.0.0.0/24)
        "192.0.0.170",  # NAT64 discovery
        "198.18.0.1",  # benchmarking
        "240.0.0.1",  # reserved
        "2001:db8::1",  # documentation
        "ff02::1",  # multicast
    ],
)
def test_addresses_that_are_not_globally_routable_are_refused(address: str) -> None:
    assert not is_public_address(address)
    literal = f"[{address}]" if ":" in address else address
    with pytest.raises(BlockedTarget, match="private, loopback or link-local"):
        check_url(f"http://{literal}/x")


@pytest.mark.parametrize(
    "address",
    ["2002:5db8:d822::", "64:ff9b::5db8:d822", "::ffff:93.184.216.34", "2606:4700::1111", "93.184.216.34"],
)
def test_ipv6_forms_of_a_public_ipv4_address_are_judged_by_that_address(address: str) -> None:
    assert is_public_address(address)


async def test_a_name_that_resolves_to_loopback_is_refused_at_request_time(server: LoopbackServer) -> None:
    # A name is judged by what it resolves to, right before connecting ("localhost" via /etc/hosts).
    with pytest.raises(BlockedTarget, match="resolves to a private"):
        await resolve("localhost", server.port)
    assert await resolve("localhost", server.port, allow_private=True) in ("127.0.0.1", "::1")
    with pytest.raises(BlockedTarget, match="does not resolve"):
        await resolve("no-such-host.invalid", 80)


async def test_a_session_for_customer_urls_connects_only_to_names_that_resolve_to_public_addresses(
    server: LoopbackServer,
) -> None:
    # Webhook attempts' aiohttp session: its resolver judges every address a name resolves to, before
    # any connection ("localhost" and the machine's own name resolve to loopback through /etc/hosts).
    async with customer_session(5) as session:
        for host in ("localhost", socket.gethostname()):
            with pytest.raises(BlockedTarget, match="resolves to a private"):
                await session.get(f"http://{host}:{server.port}/echo")
        with pytest.raises(BlockedTarget, match="does not resolve"):
            await session.get("http://no-such-host.invalid/echo")
    async with (
        customer_session(5, allow_private=True) as session,
        session.get(f"http://localhost:{server.port}/echo") as response,
    ):
        # The name stays the Host header.
        assert (response.status, await response.text()) == (200, f"host=localhost:{server.port} path=/echo")


async def test_allowed_private_targets_are_reached_at_the_checked_address(server: LoopbackServer) -> None:
    async with httpx.AsyncClient() as client:
        response = await guarded_request(client, "GET", f"{server.url}/echo", allow_private=True)
    assert response.status_code == 200
    assert response.text == f"host=127.0.0.1:{server.port} path=/echo"


async def test_redirects_are_returned_not_followed(server: LoopbackServer) -> None:
    async with httpx.AsyncClient() as client:
        response = await guarded_request(
            client, "GET", f"{server.url}/hop?to=http://169.254.169.254/", allow_private=True
        )
    assert response.status_code == 302


async def test_guarded_get_checks_every_hop(server: LoopbackServer) -> None:
    async with httpx.AsyncClient() as client:
        followed = await guarded_get(client, f"{server.url}/hop?to=/echo", allow_private=True)
        assert followed.text.endswith("path=/echo")
        with pytest.raises(BlockedTarget, match="More than 1 redirects"):
            await guarded_get(
                client, f"{server.url}/hop?to=/hop%3Fto%3D/hop%253Fto%253D/echo", allow_private=True, max_redirects=1
            )


async def test_an_address_is_judged_as_it_is_without_a_lookup() -> None:
    # Webhook attempts to an IP address skip getaddrinfo (a thread hop each); the check is the same.
    assert await resolve("93.184.215.14", 443) == "93.184.215.14"
    assert await resolve("2606:2800:21f:cb07:6820:80da:af6b:8b2c", 443) == "2606:2800:21f:cb07:6820:80da:af6b:8b2c"
    for private in ("127.0.0.1", "10.1.2.3", "::1", "::ffff:127.0.0.1", "169.254.169.254"):
        with pytest.raises(BlockedTarget, match="resolves to a private"):
            await resolve(private, 80)
        assert await resolve(private, 80, allow_private=True) == private


async def test_check_target_resolves_names_before_anything_is_sent() -> None:
    # The machine's own name passes the syntax check and resolves (through /etc/hosts) to loopback.
    host = socket.gethostname()
    assert check_url(f"http://{host}/x").host == host
    with pytest.raises(BlockedTarget, match="resolves to a private"):
        await check_target(f"http://{host}/x")
    assert (await check_target(f"http://{host}/x", allow_private=True)).host == host
    # A name that does not resolve (yet) passes: every request checks it again.
    assert (await check_target("https://no-such-host.invalid/x")).host == "no-such-host.invalid"
    with pytest.raises(BlockedTarget, match="must use https"):
        await check_target("http://no-such-host.invalid/x", require_https=True)
    with pytest.raises(BlockedTarget, match="private, loopback or link-local"):
        await check_target("http://169.254.169.254/latest/meta-data/")

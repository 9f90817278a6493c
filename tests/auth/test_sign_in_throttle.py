"""Sign-in throttling with rate limits on: failed attempts per account, IPv6 clients by their /64.

Each attempt comes from its own client address (ASGITransport's `client`), so the per-address limit
of 5 a minute stays out of the way unless a test is about it.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from backplane.app import create_app
from backplane.core.config import Settings
from tests.auth.helpers import BAD_CREDENTIALS, assert_licensing_error, assert_platform_error
from tests.fixtures.auth import PASSWORD, Api

TOKEN = "/api/v1/auth/token/"
LOGIN = "/v1/auth/login"
WRONG = "Wrong-password-1"
THROTTLED = re.compile(r"^Too many failed sign-in attempts for this account\. Try again in (\d+) seconds\.$")
_addresses = (f"198.51.100.{n}" for n in itertools.count(1))


@pytest.fixture
async def limited_app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings.model_copy(update={"rate_limits_enabled": True}))
    async with application.router.lifespan_context(application):
        yield application


class Clients:
    """Sends each request from the given address, or from a fresh one."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def post(self, path: str, body: dict[str, str], address: str | None = None) -> httpx.Response:
        transport = httpx.ASGITransport(app=self.app, client=(address or next(_addresses), 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            return await http.post(path, json=body)

    async def fail(self, email: str, times: int, address: str | None = None) -> None:
        for _ in range(times):
            response = await self.post(TOKEN, {"email": email, "password": WRONG}, address)
            assert_licensing_error(response, 401, "Unauthorized", BAD_CREDENTIALS)


@pytest.fixture
def clients(limited_app: FastAPI) -> Clients:
    return Clients(limited_app)


def _assert_throttled_licensing(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    body = response.json()
    assert set(body) == {"error", "detail"} and body["error"] == "Rate limited"
    match = THROTTLED.match(body["detail"])
    assert match, body
    retry_after = int(response.headers["Retry-After"])
    # A rate, not a lockout: the next attempt is let through within one refill interval (90 s).
    assert 1 <= retry_after <= 90
    assert int(match.group(1)) == retry_after
    assert response.headers["X-RateLimit-Retry-After"] == str(retry_after)
    assert response.headers["X-RateLimit-Limit"] == "10"
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert response.headers["RateLimit-Policy"] == '"sign-in-account";q=10;w=900'
    return retry_after


async def test_ten_failures_for_an_account_then_429_from_any_address_even_with_the_right_password(
    api: Api, clients: Clients
) -> None:
    account = await api.register("victim@example.com")

    await clients.fail(account.email, 10)

    refused = await clients.post(TOKEN, {"email": account.email, "password": WRONG})
    _assert_throttled_licensing(refused)
    right_password = await clients.post(TOKEN, {"email": account.email, "password": PASSWORD})
    _assert_throttled_licensing(right_password)
    platform = await clients.post(LOGIN, {"email": account.email, "password": PASSWORD})
    assert platform.status_code == 429
    error = platform.json()["error"]
    assert error["code"] == "RATE_LIMIT_EXCEEDED"
    assert THROTTLED.match(error["message"])
    assert error["details"]["limit"] == 10 and error["details"]["remaining"] == 0
    assert 1 <= int(platform.headers["Retry-After"]) <= 90


async def test_the_platform_login_counts_failures_too(api: Api, clients: Clients) -> None:
    account = await api.register("victim@example.com")
    for _ in range(10):
        failed = await clients.post(LOGIN, {"email": account.email, "password": WRONG})
        assert_platform_error(failed, 401, "UNAUTHORIZED", BAD_CREDENTIALS)

    _assert_throttled_licensing(await clients.post(TOKEN, {"email": account.email, "password": WRONG}))


async def test_an_unknown_address_is_throttled_exactly_like_an_account(clients: Clients) -> None:
    await clients.fail("nobody@example.com", 10)

    _assert_throttled_licensing(await clients.post(TOKEN, {"email": "nobody@example.com", "password": WRONG}))


async def test_another_account_is_not_affected(api: Api, clients: Clients) -> None:
    victim = await api.register("victim@example.com")
    other = await api.register("other@example.com")
    await clients.fail(victim.email, 10)

    response = await clients.post(TOKEN, {"email": other.email, "password": PASSWORD})

    assert response.status_code == 200, response.text


async def test_successful_sign_ins_do_not_count(api: Api, clients: Clients) -> None:
    account = await api.register("dev@example.com")
    await clients.fail(account.email, 9)

    for _ in range(5):
        response = await clients.post(TOKEN, {"email": account.email, "password": PASSWORD})
        assert response.status_code == 200, response.text
    await clients.fail(account.email, 1)  # the tenth failure is still let through

    _assert_throttled_licensing(await clients.post(TOKEN, {"email": account.email, "password": WRONG}))


async def test_the_owner_still_signs_in_from_a_network_it_signed_in_from_before(api: Api, clients: Clients) -> None:
    account = await api.register("victim@example.com")
    home = "203.0.113.10"
    assert (await clients.post(TOKEN, {"email": account.email, "password": PASSWORD}, home)).status_code == 200
    await clients.fail(account.email, 10)  # an attacker, from elsewhere
    _assert_throttled_licensing(await clients.post(TOKEN, {"email": account.email, "password": PASSWORD}))

    from_home = await clients.post(TOKEN, {"email": account.email, "password": PASSWORD}, home)

    assert from_home.status_code == 200, from_home.text


async def test_failures_from_a_known_network_do_not_spend_the_accounts_budget_elsewhere(
    api: Api, clients: Clients
) -> None:
    # A known network (here an IPv6 /64) has its own budget for the account, so the owner mistyping
    # at home does not bring the account closer to 429 elsewhere, nor the reverse.
    account = await api.register("dev@example.com")
    home = "2001:db8:1:2::1"
    assert (await clients.post(TOKEN, {"email": account.email, "password": PASSWORD}, home)).status_code == 200
    await clients.fail(account.email, 3, "2001:db8:1:2::99")  # same /64: the known network

    await clients.fail(account.email, 10)  # elsewhere: the whole account budget is still there

    _assert_throttled_licensing(await clients.post(TOKEN, {"email": account.email, "password": WRONG}))
    again = await clients.post(TOKEN, {"email": account.email, "password": PASSWORD}, "2001:db8:1:2::abcd")
    assert again.status_code == 200, again.text


async def test_an_ipv6_client_is_limited_by_its_64_not_by_its_address(clients: Clients) -> None:
    body = {"email": "nobody@example.com", "password": WRONG}
    for n in range(5):
        response = await clients.post(TOKEN, body, f"2001:db8:aaaa:bbbb::{n + 1:x}")
        assert response.status_code == 401, response.text

    same_64 = await clients.post(TOKEN, body, "2001:db8:aaaa:bbbb:ffff:ffff:ffff:fffe")
    other_64 = await clients.post(TOKEN, {"email": "someone@example.com", "password": WRONG}, "2001:db8:aaaa:bbbc::1")

    assert same_64.status_code == 429
    assert same_64.json()["detail"].startswith("Rate limit exceeded (5 requests per 60 seconds)")
    assert other_64.status_code == 401, other_64.text


async def test_an_ipv4_mapped_ipv6_client_counts_as_its_ipv4_address(clients: Clients) -> None:
    body = {"email": "nobody@example.com", "password": WRONG}
    for _ in range(5):
        assert (await clients.post(TOKEN, body, "192.0.2.44")).status_code == 401

    mapped = await clients.post(TOKEN, body, "::ffff:192.0.2.44")

    assert mapped.status_code == 429

"""The Redis rate limiter on both surfaces: categories, plan tier, headers, 429 bodies, refill."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from fastapi import FastAPI

from backplane.app import create_app
from backplane.core.config import Settings
from tests.fixtures.auth import Account, Api

RATE_LIMITED_DETAIL = re.compile(
    r"^Rate limit exceeded \((\d+) requests per 60 seconds\)\. Try again in \d+ seconds\.$"
)


@pytest.fixture
async def limited_app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings.model_copy(update={"rate_limits_enabled": True, "trusted_proxies": "10.0.0.0/8"}))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def limited(limited_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=limited_app), base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def unlimited_account(api: Api) -> Account:
    """An account made through the unlimited app (registration is itself rate limited)."""
    return await api.register("limits@example.com")


def _assert_headers(response: httpx.Response, name: str, limit: int, remaining: int) -> None:
    headers = response.headers
    assert headers["X-RateLimit-Limit"] == str(limit)
    assert headers["X-RateLimit-Remaining"] == str(remaining)
    assert int(headers["X-RateLimit-Reset"]) > 1_700_000_000
    assert headers["RateLimit-Policy"] == f'"{name}";q={limit};w=60'
    assert re.fullmatch(rf'"{name}";r={remaining};t=\d+', headers["RateLimit"])


def _assert_licensing_429(response: httpx.Response, limit: int) -> None:
    assert response.status_code == 429
    body = response.json()
    assert set(body) == {"error", "detail"} and body["error"] == "Rate limited"
    assert RATE_LIMITED_DETAIL.match(body["detail"]) and RATE_LIMITED_DETAIL.match(body["detail"]).group(1) == str(
        limit
    )  # type: ignore[union-attr]
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["X-RateLimit-Retry-After"] == response.headers["Retry-After"]
    assert response.headers["X-RateLimit-Remaining"] == "0"


async def test_authentication_is_5_a_minute_per_client_ip(limited: httpx.AsyncClient) -> None:
    body = {"email": "nobody@example.com", "password": "wrong-password"}
    for remaining in (4, 3, 2, 1, 0):
        response = await limited.post("/api/v1/auth/token/", json=body)
        assert response.status_code == 401
        _assert_headers(response, "authentication", 5, remaining)
    refused = await limited.post("/api/v1/auth/token/", json=body)
    _assert_licensing_429(refused, 5)
    # Another endpoint of the category shares the budget; the platform's login is the same category.
    assert (await limited.post("/api/v1/auth/forgot-password/", json={"email": "a@example.com"})).status_code == 429
    platform = await limited.post("/v1/auth/login", json=body)
    assert platform.status_code == 429
    assert platform.json()["error"]["code"] == "RATE_LIMIT_EXCEEDED"


async def test_x_forwarded_for_counts_only_from_a_trusted_proxy(limited_app: FastAPI) -> None:
    body = {"email": "nobody@example.com", "password": "wrong-password"}

    def client(peer: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=limited_app, client=(peer, 5000))
        return httpx.AsyncClient(transport=transport, base_url="http://testserver")

    async with client("10.1.2.3") as proxy, client("192.0.2.7") as direct:
        for _ in range(5):
            await proxy.post("/api/v1/auth/token/", json=body, headers={"X-Forwarded-For": "198.51.100.1"})
        limited = await proxy.post("/api/v1/auth/token/", json=body, headers={"X-Forwarded-For": "198.51.100.1"})
        assert limited.status_code == 429
        # A different client behind the same proxy has its own budget.
        other = await proxy.post("/api/v1/auth/token/", json=body, headers={"X-Forwarded-For": "198.51.100.2"})
        assert other.status_code == 401
        # An untrusted peer cannot choose its identity with the header: its own address counts.
        for _ in range(5):
            await direct.post("/api/v1/auth/token/", json=body, headers={"X-Forwarded-For": f"203.0.113.{_}"})
        assert (
            await direct.post("/api/v1/auth/token/", json=body, headers={"X-Forwarded-For": "203.0.113.99"})
        ).status_code == 429


async def _until_refused(
    send: Callable[[], Awaitable[httpx.Response]], most: int
) -> tuple[list[httpx.Response], float]:
    """Requests until the first 429 (at most `most`), and the seconds they took: the bucket refills while they run,
    by how much depends on the machine's speed, so the tests allow for what that time refilled."""
    started = time.monotonic()
    responses: list[httpx.Response] = []
    while not responses or responses[-1].status_code != 429:
        assert len(responses) < most, "never refused"
        responses.append(await send())
    return responses, time.monotonic() - started


async def test_validation_is_60_a_minute_per_ip(limited: httpx.AsyncClient) -> None:
    responses, seconds = await _until_refused(
        lambda: limited.post("/api/v1/licenses/validate/", json={"key_string": "X"}), most=200
    )
    *passed, refused = responses
    assert {r.status_code for r in passed} == {200}
    assert 60 <= len(passed) <= 60 + int(seconds / 1.0) + 1  # 60 at once, one more a second
    _assert_headers(passed[-1], "validation", 60, 0)
    _assert_licensing_429(refused, 60)


async def test_license_operations_are_100_a_minute_per_caller(
    limited: httpx.AsyncClient, unlimited_account: Account, api: Api
) -> None:
    headers = unlimited_account.headers
    responses, seconds = await _until_refused(lambda: limited.get("/api/v1/licenses/", headers=headers), most=400)
    *passed, refused = responses
    # 100 at once, refilled at one per 600 ms while the loop runs: the first 100 always pass.
    assert {r.status_code for r in passed} == {200}
    assert 100 <= len(passed) <= 100 + int(seconds / 0.6) + 1
    _assert_licensing_429(refused, 100)
    other = await api.register("other-caller@example.com")
    fresh = await limited.get("/api/v1/licenses/", headers=other.headers)
    assert fresh.status_code == 200
    _assert_headers(fresh, "license", 100, 99)


async def test_heartbeat_is_20_a_minute_per_session(
    limited: httpx.AsyncClient, unlimited_account: Account, client: httpx.AsyncClient
) -> None:
    assert unlimited_account.api is not None
    key = (await unlimited_account.api.issue_license(unlimited_account, seats=2))["key_string"]
    sessions = []
    for hardware in ("a", "b"):
        acquired = await client.post(
            "/api/v1/licenses/acquire/",
            json={"license_key": key, "hardware_id": hardware},
            headers=unlimited_account.headers,
        )
        sessions.append(acquired.json()["session_id"])
    url = "/api/v1/licenses/sessions/{}/heartbeat/"
    for _ in range(20):
        assert (await limited.patch(url.format(sessions[0]), headers=unlimited_account.headers)).status_code == 200
    _assert_licensing_429(await limited.patch(url.format(sessions[0]), headers=unlimited_account.headers), 20)
    assert (await limited.patch(url.format(sessions[1]), headers=unlimited_account.headers)).status_code == 200


async def test_platform_free_tier_allows_a_burst_of_10_then_refills(
    limited: httpx.AsyncClient, unlimited_account: Account, api: Api
) -> None:
    headers = unlimited_account.headers
    for remaining in range(9, -1, -1):
        response = await limited.get("/v1/users/me", headers=headers)
        assert response.status_code == 200
        _assert_headers(response, "free", 60, remaining)
    refused = await limited.get("/v1/users/me", headers=headers)
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "RATE_LIMIT_EXCEEDED"
    assert error["message"].startswith("Rate limit exceeded (60 requests per 60 seconds). Try again in ")
    assert error["details"]["limit"] == 60 and error["details"]["remaining"] == 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", error["details"]["reset_at"])
    assert error["request_id"] == refused.headers["X-Request-ID"]
    assert refused.headers["Retry-After"] == "1"  # 60 a minute: one more each second

    # The limit is per organization: another organization is untouched.
    other = await api.register("other-org@example.com")
    assert (await limited.get("/v1/organizations", headers=other.headers)).status_code == 200

    await asyncio.sleep(1.05)
    assert (await limited.get("/v1/users/me", headers=headers)).status_code == 200


async def test_no_rate_limit_headers_when_disabled(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/licenses/validate/", json={"key_string": "X"})
    assert "X-RateLimit-Limit" not in response.headers
    for _ in range(70):
        assert (await client.post("/api/v1/licenses/validate/", json={"key_string": "X"})).status_code == 200

"""The monthly job quota: atomic under concurrency, 429 QUOTA_EXCEEDED with the reset time."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from backplane.billing import quota
from backplane.billing.plans import PLANS, PlanName
from backplane.core.config import Settings
from tests.conftest import TEST_REDIS_URL

NOW = datetime(2026, 12, 31, 23, 0, tzinfo=UTC)


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(TEST_REDIS_URL, decode_responses=True)
    yield client
    await client.aclose()


async def test_a_month_of_free_jobs_is_100_even_under_concurrency(redis: Redis) -> None:
    organization = uuid.uuid4()
    results = await asyncio.gather(
        *(quota.consume(redis, organization, PLANS[PlanName.free], NOW) for _ in range(130)), return_exceptions=True
    )
    refused = [r for r in results if isinstance(r, quota.QuotaExceeded)]
    assert len(refused) == 30
    assert await quota.used(redis, organization, NOW) == 100
    error = refused[0]
    assert error.status_code == 429 and error.code == "QUOTA_EXCEEDED"
    assert error.details == {"limit": 100, "used": 100, "reset_at": "2027-01-01T00:00:00Z"}
    assert error.headers["Retry-After"] == "3600"
    # A new month starts from zero; another organization has its own count.
    assert await quota.consume(redis, organization, PLANS[PlanName.free], datetime(2027, 1, 1, tzinfo=UTC)) == 1
    assert await quota.consume(redis, uuid.uuid4(), PLANS[PlanName.free], NOW) == 1


async def test_enterprise_is_unlimited_and_reconcile_sets_the_count(redis: Redis) -> None:
    organization = uuid.uuid4()
    assert await quota.consume(redis, organization, PLANS[PlanName.enterprise], NOW) == 0
    await quota.reconcile(redis, organization, 99, NOW)
    assert await quota.consume(redis, organization, PLANS[PlanName.free], NOW) == 100
    await quota.give_back(redis, organization, NOW)
    assert await quota.used(redis, organization, NOW) == 99


async def test_quota_exceeded_renders_in_both_surfaces_shapes(app: FastAPI) -> None:
    @app.post("/v1/_quota")
    async def platform_route() -> None:
        await quota.consume(app.state.redis, uuid.UUID(int=7), PLANS[PlanName.free], NOW, amount=101)

    @app.post("/api/v1/_quota/")
    async def licensing_route() -> None:
        await quota.consume(app.state.redis, uuid.UUID(int=7), PLANS[PlanName.free], NOW, amount=101)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        platform = await http.post("/v1/_quota")
        licensing = await http.post("/api/v1/_quota/")
    assert platform.status_code == 429
    assert platform.json()["error"] == {
        "code": "QUOTA_EXCEEDED",
        "message": "Monthly job quota exceeded: 100 jobs on the free plan. It resets at 2027-01-01T00:00:00Z.",
        "details": {"limit": 100, "used": 0, "reset_at": "2027-01-01T00:00:00Z"},
        "request_id": platform.headers["X-Request-ID"],
    }
    assert licensing.status_code == 429
    assert licensing.json() == {
        "error": "Quota exceeded",
        "detail": "Monthly job quota exceeded: 100 jobs on the free plan. It resets at 2027-01-01T00:00:00Z.",
    }


def test_settings_fixture_is_untouched(settings: Settings) -> None:
    assert settings.stripe.local_mode

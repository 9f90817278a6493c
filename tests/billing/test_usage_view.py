"""GET /v1/usage and the usage in /api/v1/subscriptions/current/: what a scripted month did, exactly; the
quota's thresholds announced once each."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from backplane.core.config import Settings
from tests.conftest import TEST_REDIS_URL
from tests.fixtures.assertions import assert_invalid
from tests.fixtures.auth import Account, Api
from tests.licenses.conftest import acquire

TEXT = b"Quarterly notes: revenue grew, churn fell.\n" * 20


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"agent_test_mode": True})


async def _usage(client: httpx.AsyncClient, account: Account, **params: str) -> dict[str, Any]:
    response = await client.get("/v1/usage", params=params, headers=account.headers)
    assert response.status_code == 200, response.text
    usage: dict[str, Any] = response.json()
    return usage


async def _jobs(client: httpx.AsyncClient, account: Account, agent_id: str, count: int) -> list[str]:
    input_data = {"seconds": 0} if agent_id == "test-sleep" else {}
    body = {"jobs": [{"agent_id": agent_id, "input_data": input_data} for _ in range(count)]}
    response = await client.post("/v1/jobs/batch", json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    return [job["id"] for job in response.json()["data"]]


async def test_a_scripted_month_is_what_usage_shows(api: Api, client: httpx.AsyncClient, settings: Settings) -> None:
    owner = await api.register("usage@example.com")
    await _jobs(client, owner, "test-noop", 3)
    sleeping = await _jobs(client, owner, "test-sleep", 2)
    cancelled = await client.post(f"/v1/jobs/{sleeping[0]}/cancel", headers=owner.headers)  # before it ran: refunded
    assert cancelled.status_code == 200, cancelled.text
    license_ = await api.issue_license(owner, seats=3)
    for machine in ("a", "b"):
        assert (await acquire(owner, license_["key_string"], machine)).status_code == 200
    uploaded = await client.post("/v1/files", files={"file": ("notes.txt", TEXT, "text/plain")}, headers=owner.headers)
    assert uploaded.status_code == 201, uploaded.text

    usage = await _usage(client, owner)
    now = datetime.now(UTC)
    assert usage["period"] == f"{now:%Y-%m}"
    assert usage["plan"] == "free"
    assert usage["jobs"] == {
        "used": 4,
        "quota": 100,
        "remaining": 96,
        "percent_used": 4.0,
        "by_agent": {"test-noop": 3, "test-sleep": 1},
        "by_day": [
            {"date": f"{now:%Y-%m}-{day:02d}", "jobs": 4 if day == now.day else 0} for day in range(1, now.day + 1)
        ],
        "thresholds_reached": [],
    }
    assert usage["concurrency"] == {"running": 1, "limit": 1}  # the free plan's one slot, handed out
    bought = {"license_id": license_["id"], "tier": "pro", "seats": 3, "live": 2}
    free = [(s["tier"], s["live"]) for s in usage["seats"] if s != bought]
    assert bought in usage["seats"] and free == [("free", 0)] * (settings.free_license_seats > 0)
    assert usage["storage"] == {"files": 1, "used_bytes": len(TEXT), "max_file_bytes": 25 * 1024 * 1024}
    assert usage["rate_limit"] == {"requests_per_minute": 60, "burst": 10}
    assert usage["reported_to_stripe"] == {}

    # The licensing surface's subscription shows the same numbers.
    current = await client.get("/api/v1/subscriptions/current/", headers=owner.headers)
    assert current.status_code == 200, current.text
    assert current.json()["usage"]["jobs"] == usage["jobs"]

    # PostgreSQL, not Redis's counters: the same after Redis lost them.
    redis = Redis.from_url(TEST_REDIS_URL)
    await redis.flushdb()
    await redis.aclose()
    again = await _usage(client, owner)
    assert again["jobs"] == usage["jobs"]


async def test_a_past_month_and_malformed_periods(api: Api, client: httpx.AsyncClient) -> None:
    owner = await api.register("usage-periods@example.com")
    await _jobs(client, owner, "test-noop", 2)
    past = await _usage(client, owner, period="2026-01")
    assert past["period"] == "2026-01"
    assert past["period_start"].startswith("2026-01-01T00:00:00") and past["period_end"].startswith("2026-02-01")
    assert past["jobs"]["used"] == 0 and past["jobs"]["by_agent"] == {}
    assert past["jobs"]["by_day"] == [{"date": f"2026-01-{day:02d}", "jobs": 0} for day in range(1, 32)]
    assert past["concurrency"]["running"] is None
    assert all(seat["live"] is None for seat in past["seats"])
    for bad in ("2026-13", "2026-1", "abc", "1999-12", "2026-10-01", ""):
        response = await client.get("/v1/usage", params={"period": bad}, headers=owner.headers)
        assert_invalid(response, {"period": ["A month as YYYY-MM, e.g. 2026-10."]})
    assert_invalid(
        await client.get("/v1/usage", params={"period": "2999-01"}, headers=owner.headers),
        {"period": ["This month has not begun yet."]},
    )
    assert (await client.get("/v1/usage")).status_code == 401


async def _thresholds(client: httpx.AsyncClient, account: Account) -> list[dict[str, Any]]:
    response = await client.get("/v1/events", params={"type": "quota.threshold_reached"}, headers=account.headers)
    assert response.status_code == 200, response.text
    return sorted((event["data"] for event in response.json()["data"]), key=lambda data: data["threshold_percent"])


async def test_thresholds_are_announced_once_each(api: Api, client: httpx.AsyncClient) -> None:
    owner = await api.register("usage-thresholds@example.com")
    await _jobs(client, owner, "test-noop", 74)
    assert await _thresholds(client, owner) == []
    [seventy_fifth] = await _jobs(client, owner, "test-noop", 1)
    assert [d["threshold_percent"] for d in await _thresholds(client, owner)] == [75]
    # Given back and taken again: 75 % is not announced twice.
    assert (await client.post(f"/v1/jobs/{seventy_fifth}/cancel", headers=owner.headers)).status_code == 200
    await _jobs(client, owner, "test-noop", 1)
    assert [d["threshold_percent"] for d in await _thresholds(client, owner)] == [75]
    await _jobs(client, owner, "test-noop", 25)  # 75 -> 100 in one batch: 90 and 100 at once
    reached = await _thresholds(client, owner)
    assert [d["threshold_percent"] for d in reached] == [75, 90, 100]
    assert reached[-1]["jobs_used"] == 100 and reached[-1]["jobs_quota"] == 100 and reached[-1]["plan"] == "free"
    refused = await client.post("/v1/jobs", json={"agent_id": "test-noop"}, headers=owner.headers)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "QUOTA_EXCEEDED"
    assert (await _usage(client, owner))["jobs"]["thresholds_reached"] == [75, 90, 100]


async def test_a_test_mode_key_sees_the_shared_quota_but_only_its_own_modes_licenses_and_files(
    api: Api, client: httpx.AsyncClient, settings: Settings
) -> None:
    """The monthly quota is the organization's, whichever mode spent it (a test-mode loop cannot get
    around it); licenses, seats and files are shown for the caller's mode only."""
    owner = await api.register("modes@example.com")
    await _jobs(client, owner, "test-noop", 2)
    live_license = await api.issue_license(owner, seats=2)
    test_headers = {
        "Authorization": f"Bearer {(await owner.create_key(mode='test', scopes=['read', 'write', 'admin']))['key']}"
    }
    created = await client.post(
        "/v1/jobs/batch", json={"jobs": [{"agent_id": "test-noop", "input_data": {}}]}, headers=test_headers
    )
    assert created.status_code == 201, created.text
    test_license = await client.post("/api/v1/licenses/", json={"tier": "pro", "seats": 1}, headers=test_headers)
    assert test_license.status_code == 201, test_license.text
    uploaded = await client.post("/v1/files", files={"file": ("notes.txt", TEXT, "text/plain")}, headers=test_headers)
    assert uploaded.status_code == 201, uploaded.text

    response = await client.get("/v1/usage", headers=test_headers)
    assert response.status_code == 200, response.text
    shown = response.json()
    assert (shown["jobs"]["used"], shown["jobs"]["by_agent"]) == (3, {"test-noop": 3})
    assert [s["license_id"] for s in shown["seats"]] == [test_license.json()["id"]]
    assert shown["storage"]["files"] == 1
    live = await _usage(client, owner)
    assert live["jobs"]["used"] == 3
    assert live_license["id"] in [s["license_id"] for s in live["seats"]]
    assert test_license.json()["id"] not in [s["license_id"] for s in live["seats"]]
    assert live["storage"]["files"] == 0

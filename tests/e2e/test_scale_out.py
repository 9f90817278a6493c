"""Scaled out: two `backplane serve` and two `backplane worker` processes on one database and Redis act
as one service. A flow alternates between the two APIs; every job runs once, within the plan's
concurrency limit across both workers; every event reaches the webhook once; a license's seats are
shared by both APIs."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from itertools import cycle, pairwise
from typing import Any

import httpx
import pytest

from backplane.core.config import Settings
from tests.fixtures.auth import PASSWORD
from tests.fixtures.processes import scaled_out
from tests.webhooks.conftest import Receiver, _receiver_server  # noqa: F401  (the receiver's server, a fixture)

pytestmark = pytest.mark.e2e

JOBS = 6
SEATS = 3


@pytest.fixture
def apis(settings: Settings) -> Iterator[list[str]]:
    env = {
        "DATABASE_URL": settings.database.url,
        "REDIS_URL": settings.redis.url,
        "SECRET_KEY": settings.secret_key,
        "STORAGE_DIR": str(settings.storage_dir),
        "AGENT_TEST_MODE": "true",
        "JOB_HEARTBEAT_SECONDS": "0.3",
        "JOB_STALL_SECONDS": "5",
        "JOB_SWEEP_INTERVAL_SECONDS": "0.3",
        "RATE_LIMITS_ENABLED": "false",
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",  # the receiver listens on loopback
        "FREE_LICENSE_SEATS": str(SEATS),  # registration's free license
    }
    with scaled_out(env, apis=2, workers=2) as base_urls:
        yield base_urls


@pytest.fixture
def receiver(_receiver_server: Receiver) -> Receiver:  # noqa: F811
    _receiver_server.reset()
    return _receiver_server


@pytest.fixture
async def clients(apis: list[str]) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    async with (
        httpx.AsyncClient(base_url=apis[0], timeout=60) as first,
        httpx.AsyncClient(base_url=apis[1], timeout=60) as second,
    ):
        yield first, second


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.request.url}: {response.status_code} {response.text}"
    return response.json()


async def finished(client: httpx.AsyncClient, job_id: str, headers: dict[str, str]) -> Any:
    """The job once final (the workers may still be starting on a busy machine: a generous deadline)."""
    deadline = time.monotonic() + 90
    while True:
        job = ok(await client.get(f"/v1/jobs/{job_id}", params={"wait": 30}, headers=headers))
        if job["status"] not in ("pending", "queued", "processing") or time.monotonic() > deadline:
            return job


def at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_two_apis_and_two_workers_act_as_one(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], receiver: Receiver
) -> None:
    first, second = clients
    turns = cycle(clients)  # each request to the other API than the last

    # Signed up on one API, signed in on the other: the same account, the same tokens' keys.
    email = f"scale{time.monotonic_ns()}@example.com"
    ok(
        await first.post(
            "/api/v1/auth/register/",
            json={"email": email, "password": PASSWORD, "full_name": "Sam", "company_name": "Scale Co"},
        ),
        201,
    )
    licensing = ok(await second.post("/api/v1/auth/token/", json={"email": email, "password": PASSWORD}))
    jwt = {"Authorization": f"Bearer {licensing['access']}"}
    platform = ok(await first.post("/v1/auth/login", json={"email": email, "password": PASSWORD}))
    key = ok(
        await second.post(
            "/v1/api-keys",
            json={"name": "scale", "scopes": ["read", "write", "admin"]},
            headers={"Authorization": f"Bearer {platform['tokens']['access_token']}"},
        ),
        201,
    )
    by_key = {"Authorization": f"Bearer {key['key']}"}
    hook = ok(
        await first.post(
            "/v1/webhooks", json={"url": receiver.url("/scale"), "events": ["job.completed"]}, headers=by_key
        ),
        201,
    )

    # Jobs created through both APIs: each runs once, and never two at once (the free plan's limit of
    # one concurrent job holds across both workers).
    job_ids = [
        ok(
            await next(turns).post(
                "/v1/jobs", json={"agent_id": "test-sleep", "input_data": {"seconds": 0.3}}, headers=by_key
            ),
            201,
        )["id"]
        for _ in range(JOBS)
    ]
    jobs = [await finished(next(turns), job_id, by_key) for job_id in job_ids]
    assert [(job["status"], job["attempts"]) for job in jobs] == [("completed", 1)] * JOBS
    for job_id in job_ids:
        history = ok(await next(turns).get(f"/v1/jobs/{job_id}/history", headers=by_key))
        assert [step["to_status"] for step in history].count("processing") == 1, history
    runs = sorted((at(job["started_at"]), at(job["finished_at"])) for job in jobs)
    assert all(start >= previous_end for (_, previous_end), (start, _) in pairwise(runs)), runs

    # Every job.completed event reaches the endpoint once, whichever worker dispatched and sent it.
    events = ok(await second.get("/v1/events", params={"type": "job.completed", "limit": 100}, headers=by_key))
    event_ids = {event["id"] for event in events["data"]}
    assert len(event_ids) == JOBS
    deadline = time.monotonic() + 60
    while len({r.headers["webhook-id"] for r in receiver.to("/scale")}) < JOBS:
        assert time.monotonic() < deadline, "not every event was delivered"
        await asyncio.sleep(0.1)
    await asyncio.sleep(6)  # past a dispatch cron and a sweep of either worker: no second delivery comes
    sent = Counter(r.headers["webhook-id"] for r in receiver.to("/scale"))
    assert sent == dict.fromkeys(event_ids, 1)
    deliveries = ok(await first.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=by_key))["data"]
    assert sorted((d["status"], d["attempt_count"]) for d in deliveries) == [("succeeded", 1)] * JOBS

    # A license's seats are one pool across both APIs: of SEATS + 1 machines acquiring at once,
    # alternately through each, exactly one is refused.
    [license_] = ok(await first.get("/api/v1/licenses/", headers=jwt))["licenses"]
    assert license_["seats"] == SEATS

    async def acquire(client: httpx.AsyncClient, machine: int) -> int:
        response = await client.post(
            "/api/v1/licenses/acquire/",
            json={"license_key": license_["key_string"], "hardware_id": f"machine-{machine}", "client_version": "1"},
            headers=jwt,
        )
        return response.status_code

    statuses = await asyncio.gather(*(acquire(next(turns), machine) for machine in range(SEATS + 1)))
    outcomes = Counter(
        "acquired" if status in (200, 201) else "refused" if status == 409 else status for status in statuses
    )
    assert outcomes == {"acquired": SEATS, "refused": 1}, statuses

"""Handing jobs to workers: woken at once, and never past the plan's limit however many workers finish at once."""

from __future__ import annotations

import asyncio
import itertools

import httpx

from backplane.core.config import Settings
from tests.fixtures.auth import Account
from tests.jobs.conftest import CreateJob, JobsWorker, wait_for


async def test_a_job_handed_out_starts_without_waiting_for_the_workers_poll_delay(
    client: httpx.AsyncClient, owner: Account, create_job: CreateJob, app: object, settings: Settings
) -> None:
    worker = await JobsWorker(settings, poll_delay=60).start()
    try:
        await asyncio.sleep(0.5)  # its first poll has passed: the next one is a minute away
        job = await create_job()
        done = await wait_for(client, owner, job["id"], seconds=10)
    finally:
        await worker.stop()
    assert done["status"] == "completed"


async def test_runs_finishing_on_two_workers_never_exceed_the_plans_concurrent_jobs(
    client: httpx.AsyncClient, owner: Account, app: object, settings: Settings
) -> None:
    workers = [await JobsWorker(settings).start(), await JobsWorker(settings).start()]
    try:
        batch = await client.post(
            "/v1/jobs/batch",
            json={"jobs": [{"agent_id": "test-noop", "input_data": {"echo": n}} for n in range(16)]},
            headers=owner.headers,
        )
        assert batch.status_code == 201, batch.text
        done = [await wait_for(client, owner, job["id"]) for job in batch.json()["data"]]
    finally:
        for worker in workers:
            await worker.stop()
    assert {job["status"] for job in done} == {"completed"}
    runs = sorted((job["started_at"], job["finished_at"]) for job in done)
    # The free plan runs one job at a time: each run starts after the one before it finished.
    for (_, finished), (started, _) in itertools.pairwise(runs):
        assert started >= finished

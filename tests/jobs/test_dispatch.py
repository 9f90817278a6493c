"""Handing jobs to workers: woken at once, and never past the plan's limit however many workers finish at once."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import create_async_engine

from backplane.core.config import Settings
from backplane.jobs.lifecycle import JOBS_QUEUE
from backplane.jobs.repository import _COMPLETE
from tests.fixtures.auth import Account
from tests.jobs.conftest import CreateJob, JobsWorker, until, wait_for


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


async def test_a_job_queued_while_the_slot_is_being_freed_is_handed_out_by_its_own_dispatch(
    client: httpx.AsyncClient, owner: Account, create_job: CreateJob, app: FastAPI, settings: Settings
) -> None:
    """The race that left jobs for the sweeper (bench/jobs.py, 50/s: p99 11 s): a run finishing in a
    statement that began before the new job committed cannot hand it the slot, and the new job's
    dispatch, counting while that statement had not committed, found the slot still taken. The
    dispatch now waits for a run being finished, and counts the slot as free once it is."""
    running = await create_job()  # the free plan's one slot: handed out at once (no worker runs here)
    waiting = await create_job()  # no slot: it waits
    engine = create_async_engine(settings.database.url)
    try:
        async with engine.connect() as finishing:  # a run finishing, not committed yet
            await finishing.execute(
                text("UPDATE jobs SET status = 'completed', dispatch_token = NULL, finished_at = now() WHERE id = :id"),
                {"id": running["id"]},
            )
            dispatching = asyncio.ensure_future(app.state.dispatcher.dispatch(uuid.UUID(owner.organization_id)))
            await asyncio.sleep(0.3)
            await finishing.commit()
        handed = await asyncio.wait_for(dispatching, 10)
    finally:
        await engine.dispose()
    assert handed == [waiting["id"]]


def _sorts(plan: dict[str, Any]) -> list[list[str]]:
    """The sort keys of every Sort node in an EXPLAIN (FORMAT JSON) plan."""
    found = [plan["Sort Key"]] if plan.get("Node Type") in ("Sort", "Incremental Sort") else []
    for child in plan.get("Plans", []):
        found.extend(_sorts(child))
    return found


async def test_a_finishing_run_finds_the_next_waiting_job_without_sorting_the_whole_queue(
    owner: Account, create_job: CreateJob, app: object, settings: Settings
) -> None:
    """Each finishing run hands its slot to the organization's best waiting job (`_COMPLETE`). With the
    waiting jobs' index in that order (priority, then age, then id), PostgreSQL reads the first one
    off the index; without `id` in it, it read and sorted every waiting job, so each run's end cost
    grew with the queue (1 ms of a 2.6 ms statement at 276 waiting). 500 wait here, beside 5,000 that
    ran, as in an organization that has used the service a while."""
    await create_job()  # the free plan's one slot
    waiting = await create_job()
    engine = create_async_engine(settings.database.url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO jobs (id, organization_id, livemode, agent_id, status, priority, input_data, config, "
                    "file_ids, attempts, max_attempts, created_by, created_at, queued_at) "
                    "SELECT 'job_wait_' || n, organization_id, livemode, agent_id, status, n % 3, input_data, config, "
                    "file_ids, 0, max_attempts, created_by, created_at + n * interval '1 ms', queued_at "
                    "FROM jobs, generate_series(1, 500) AS n WHERE id = :id"
                ),
                {"id": waiting["id"]},
            )
            await connection.execute(  # and the organization's history: 5,000 jobs that ran
                text(
                    "INSERT INTO jobs (id, organization_id, livemode, agent_id, status, priority, input_data, config, "
                    "file_ids, attempts, max_attempts, created_by, created_at, queued_at, finished_at) "
                    "SELECT 'job_done_' || n, organization_id, livemode, agent_id, 'completed', 0, input_data, "
                    "config, file_ids, 1, max_attempts, created_by, created_at, queued_at, now() "
                    "FROM jobs, generate_series(1, 5000) AS n WHERE id = :id"
                ),
                {"id": waiting["id"]},
            )
            await connection.execute(text("ANALYZE jobs, agent_maintenance"))  # as autovacuum would
            parameters = {
                "job_id": "job_none",
                "token": uuid.uuid4(),
                "now": datetime.now(UTC),
                "output": json.dumps({}),
                "event_id": "evt_none",
                "event_data": json.dumps({}),
                "event_trace": None,
                "slots": 1,
                "next_token": uuid.uuid4(),
                "run_next": True,
                "hook_id": "whd_none",
                "hook_attempts": 1,
            }
            explained = await connection.execute(text(f"EXPLAIN (FORMAT JSON) {_COMPLETE.text}"), parameters)
            plan = explained.scalar_one()
    finally:
        await engine.dispose()
    assert _sorts(plan[0]["Plan"]) == []


async def test_a_new_job_is_handed_out_by_the_transaction_that_creates_it(
    client: httpx.AsyncClient, owner: Account, app: FastAPI
) -> None:
    """Creating a job with a slot free commits once: the creating transaction hands it out, and the
    worker's message follows that commit. Before, a second transaction did (a connection checked out
    and pinged, BEGIN, the lock, the count, the pick, COMMIT): from queued to handed out took a p50 of
    14 to 32 ms on the bench at 50 jobs/s (`bench/jobs.py`), 6 to 9 ms in one transaction."""
    commits: list[object] = []
    engine = app.state.engine.sync_engine
    listener = lambda connection: commits.append(connection)  # noqa: E731
    event.listen(engine, "commit", listener)
    try:
        response = await client.post("/v1/jobs", json={"agent_id": "test-noop"}, headers=owner.headers)
    finally:
        event.remove(engine, "commit", listener)
    assert response.status_code == 201, response.text
    assert len(commits) == 1
    async with app.state.sessionmaker() as session:
        job_id = response.json()["id"]
        token = await session.scalar(text("SELECT dispatch_token FROM jobs WHERE id = :id"), {"id": job_id})
    assert token is not None
    assert await app.state.queue.zcard(JOBS_QUEUE) == 1  # its message, sent once the job committed


async def test_each_job_run_in_turn_in_one_slot_wakes_its_waiters_at_once(
    client: httpx.AsyncClient, owner: Account, jobs_worker: JobsWorker
) -> None:
    """The free plan's one slot runs three jobs in turn, each taken on by the run before it. Every
    completion is announced as it happens (the `?wait=` below would otherwise last its 30 s), the
    ones followed by another job as much as the last."""
    batch = await client.post(
        "/v1/jobs/batch", json={"jobs": [{"agent_id": "test-noop"} for _ in range(3)]}, headers=owner.headers
    )
    assert batch.status_code == 201, batch.text
    started = asyncio.get_running_loop().time()
    done = await asyncio.gather(*(wait_for(client, owner, job["id"], seconds=30) for job in batch.json()["data"]))
    assert [job["status"] for job in done] == ["completed"] * 3
    assert asyncio.get_running_loop().time() - started < 15


async def test_a_plan_cancelled_while_its_runs_go_on_limits_the_slots_they_free(
    client: httpx.AsyncClient, owner: Account, jobs_worker: JobsWorker
) -> None:
    """Pro runs five jobs at once. Cancelled to free (one) while five run, the slots those runs free are
    handed on under free's limit: the waiting job starts only once the last of them has finished. The
    plan is read as a run starts (beside its announcement, in one round trip) and read again at its end
    when the run took longer than a moment."""
    await owner.buy("price_pro_monthly")
    sleepers = await client.post(
        "/v1/jobs/batch",
        json={"jobs": [{"agent_id": "test-sleep", "input_data": {"seconds": 1.5 + n * 0.2}} for n in range(5)]},
        headers=owner.headers,
    )
    assert sleepers.status_code == 201, sleepers.text
    waiting = await client.post("/v1/jobs", json={"agent_id": "test-noop"}, headers=owner.headers)
    assert waiting.status_code == 201 and waiting.json()["status"] == "queued"

    async def all_running() -> bool:
        jobs = await client.get("/v1/jobs", params={"status": "processing"}, headers=owner.headers)
        return len(jobs.json()["data"]) == 5

    await until(all_running, seconds=10)
    cancelled = await client.post("/api/v1/subscriptions/cancel/", json={"immediately": True}, headers=owner.headers)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "canceled"

    ran = [await wait_for(client, owner, job["id"]) for job in sleepers.json()["data"]]
    last = await wait_for(client, owner, waiting.json()["id"])
    assert {job["status"] for job in ran} == {"completed"} and last["status"] == "completed"
    assert last["started_at"] >= max(job["finished_at"] for job in ran)

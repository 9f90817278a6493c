"""The lifecycle with a real arq worker: completion, retries, dead letters, cancellation, limits, priority."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select, text

from backplane.core.config import Settings
from backplane.events.models import Event
from tests.fixtures.auth import Account
from tests.jobs.conftest import CreateJob, JobsWorker, until, wait_for


async def _history(client: httpx.AsyncClient, account: Account, job_id: str) -> list[tuple[str | None, str]]:
    response = await client.get(f"/v1/jobs/{job_id}/history", headers=account.headers)
    assert response.status_code == 200
    return [(t["from_status"], t["to_status"]) for t in response.json()]


async def _events(app: FastAPI, type_: str) -> list[dict[str, Any]]:
    async with app.state.sessionmaker() as session:
        rows = (await session.execute(select(Event).where(Event.type == type_).order_by(Event.created_at))).scalars()
        return [row.data for row in rows]


async def _status(client: httpx.AsyncClient, account: Account, job_id: str) -> str:
    status: str = (await client.get(f"/v1/jobs/{job_id}", headers=account.headers)).json()["status"]
    return status


async def test_a_job_runs_to_completion_and_records_its_event(
    client: httpx.AsyncClient, owner: Account, create_job: CreateJob, jobs_worker: JobsWorker, app: FastAPI
) -> None:
    job = await create_job(input_data={"echo": {"hello": "world"}})
    done = await wait_for(client, owner, job["id"])
    assert done["status"] == "completed"
    assert done["output_data"] == {"echo": {"hello": "world"}, "files": []}
    assert done["attempts"] == 1
    assert done["started_at"] <= done["finished_at"]
    output = await client.get(f"/v1/jobs/{job['id']}/output", headers=owner.headers)
    assert output.status_code == 200
    assert output.json()["content"] == done["output_data"]
    assert await _history(client, owner, job["id"]) == [
        (None, "pending"),
        ("pending", "queued"),
        ("queued", "processing"),
        ("processing", "completed"),
    ]
    [event] = await _events(app, "job.completed")
    assert event["id"] == job["id"] and event["status"] == "completed"
    assert event["output_url"].endswith(f"/v1/jobs/{job['id']}/output")


async def test_a_failing_attempt_is_retried_with_backoff(
    client: httpx.AsyncClient, owner: Account, create_job: CreateJob, jobs_worker: JobsWorker
) -> None:
    job = await create_job("test-fail", input_data={"fail_times": 2})
    done = await wait_for(client, owner, job["id"])
    assert done["status"] == "completed", done
    assert done["attempts"] == 3
    assert done["output_data"] == {"succeeded_on_attempt": 3}
    assert done["error"] is None
    assert [t for t in await _history(client, owner, job["id"]) if t[0] == "processing"] == [
        ("processing", "queued"),
        ("processing", "queued"),
        ("processing", "completed"),
    ]


async def test_three_failed_attempts_end_in_the_dead_letter_queue_and_retry_runs_it_again(
    client: httpx.AsyncClient, owner: Account, create_job: CreateJob, jobs_worker: JobsWorker, app: FastAPI
) -> None:
    job = await create_job("test-fail", input_data={"message": "boom"})
    done = await wait_for(client, owner, job["id"])
    assert done["status"] == "dead_letter"
    assert done["attempts"] == 3
    assert done["error"] == {"code": "AGENT_ERROR", "message": "RuntimeError: boom (attempt 3)", "attempt": 3}
    history = await _history(client, owner, job["id"])
    assert history[-2:] == [("processing", "failed"), ("failed", "dead_letter")]
    [event] = await _events(app, "job.failed")
    assert event["id"] == job["id"] and event["error"]["message"] == "RuntimeError: boom (attempt 3)"

    dead = await client.get("/v1/jobs", params={"status": "dead_letter"}, headers=owner.headers)
    assert [j["id"] for j in dead.json()["data"]] == [job["id"]]
    retried = await client.post(f"/v1/jobs/{job['id']}/retry", headers=owner.headers)
    assert retried.status_code == 200
    assert retried.json()["status"] == "queued" and retried.json()["attempts"] == 0
    again = await wait_for(client, owner, job["id"])
    assert again["status"] == "dead_letter" and again["attempts"] == 3
    assert ("dead_letter", "queued") in await _history(client, owner, job["id"])


async def test_bad_input_fails_at_once_without_retries(
    client: httpx.AsyncClient, owner: Account, create_job: CreateJob, jobs_worker: JobsWorker
) -> None:
    job = await create_job("test-fail", input_data={"permanent": True, "message": "unreadable file"})
    done = await wait_for(client, owner, job["id"])
    assert done["status"] == "failed"
    assert done["attempts"] == 1
    assert done["error"] == {"code": "INVALID_INPUT", "message": "unreadable file", "attempt": 1}


async def _second_waiting_for_first(
    client: httpx.AsyncClient, owner: Account, create_job: CreateJob
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two jobs of a free organization (one at a time): the first running for a second, the second queued."""
    first = await create_job("test-sleep", input_data={"seconds": 1.0})
    second = await create_job("test-sleep", input_data={"seconds": 0})

    async def first_running() -> bool:
        return await _status(client, owner, first["id"]) == "processing"

    await until(first_running)
    return first, second


async def test_a_free_organization_runs_one_job_at_a_time(
    client: httpx.AsyncClient, owner: Account, create_job: CreateJob, jobs_worker: JobsWorker
) -> None:
    first, second = await _second_waiting_for_first(client, owner, create_job)
    await asyncio.sleep(0.5)  # several sweeps and polls: the second must still wait
    assert await _status(client, owner, second["id"]) == "queued"
    done_first = await wait_for(client, owner, first["id"])
    done_second = await wait_for(client, owner, second["id"])
    assert done_second["status"] == "completed"
    assert done_second["started_at"] >= done_first["finished_at"]


async def test_a_run_whose_connection_postgresql_closed_completes_and_hands_its_slot_on(
    client: httpx.AsyncClient, owner: Account, create_job: CreateJob, jobs_worker: JobsWorker, app: FastAPI
) -> None:
    # A slot's run holds one connection for its chain of jobs (claim, completion, the next job's claim).
    first, second = await _second_waiting_for_first(client, owner, create_job)
    async with app.state.engine.connect() as connection:  # as a restart of PostgreSQL would
        killed = await connection.scalar(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    assert killed >= 1
    done_first = await wait_for(client, owner, first["id"])
    done_second = await wait_for(client, owner, second["id"])
    assert (done_first["status"], done_second["status"]) == ("completed", "completed")
    assert done_second["started_at"] >= done_first["finished_at"]
    assert [event["id"] for event in await _events(app, "job.completed")] == [first["id"], second["id"]]


async def test_a_worker_opens_its_runs_connections_before_its_first_job(
    jobs_worker: JobsWorker, app: FastAPI, settings: Settings
) -> None:
    runner = jobs_worker.runner
    assert runner.statements.sync_engine.pool.checkedin() == settings.job_worker_concurrency
    async with app.state.engine.connect() as connection:
        before = await connection.scalar(text("SELECT count(*) FROM job_transitions"))
    await runner.warm()  # its claims match no job
    async with app.state.engine.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM job_transitions")) == before
    assert runner.statements.sync_engine.pool.checkedin() == settings.job_worker_concurrency


async def test_a_runs_claim_and_completion_are_planned_once_per_connection(
    client: httpx.AsyncClient, owner: Account, create_job: CreateJob, jobs_worker: JobsWorker, settings: Settings
) -> None:
    # Planning the completion's statement took PostgreSQL 0.4 to 0.6 ms, five times its execution; the
    # plan's shape never depends on the values (ids, a token, a time), so a connection plans it once.
    jobs = [await create_job(input_data={"echo": n}) for n in range(3)]
    for job in jobs:
        assert (await wait_for(client, owner, job["id"]))["status"] == "completed"
    runner = jobs_worker.runner
    connections = [await runner.statements.connect() for _ in range(settings.job_worker_concurrency)]
    try:
        plans = [
            tuple(row)
            for connection in connections
            for row in await connection.execute(
                text(
                    "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                    "WHERE statement LIKE '%INSERT INTO job_transitions%'"
                )
            )
        ]
    finally:
        for connection in connections:
            await connection.close()
    assert sum(custom for _, custom in plans) == 0
    assert sum(generic for generic, _ in plans) >= 2 * len(jobs)  # each job's claim and completion


async def test_priority_then_age_decides_who_goes_next(
    client: httpx.AsyncClient, owner: Account, create_job: CreateJob, jobs_worker: JobsWorker
) -> None:
    blocker = await create_job("test-sleep", input_data={"seconds": 0.8})

    async def blocker_running() -> bool:
        return await _status(client, owner, blocker["id"]) == "processing"

    await until(blocker_running)
    low = await create_job(priority=-5)
    old = await create_job(priority=0)
    young = await create_job(priority=0)
    high = await create_job(priority=10)
    finished = [await wait_for(client, owner, j["id"]) for j in (low, old, young, high)]
    order = [j["id"] for j in sorted(finished, key=lambda j: j["started_at"])]
    assert order == [high["id"], old["id"], young["id"], low["id"]]


async def test_cancelling_a_queued_job(
    client: httpx.AsyncClient, owner: Account, create_job: CreateJob, jobs_worker: JobsWorker
) -> None:
    blocker = await create_job("test-sleep", input_data={"seconds": 0.5})
    waiting = await create_job()
    cancelled = await client.post(f"/v1/jobs/{waiting['id']}/cancel", headers=owner.headers)
    assert cancelled.json()["status"] == "cancelled"
    await wait_for(client, owner, blocker["id"])
    await asyncio.sleep(0.5)
    final = (await client.get(f"/v1/jobs/{waiting['id']}", headers=owner.headers)).json()
    assert final["status"] == "cancelled" and final["attempts"] == 0 and final["started_at"] is None


async def test_cancelling_a_running_job_aborts_it_and_frees_the_slot(
    client: httpx.AsyncClient, owner: Account, create_job: CreateJob, jobs_worker: JobsWorker
) -> None:
    running = await create_job("test-sleep", input_data={"seconds": 20})
    nxt = await create_job()

    async def is_running() -> bool:
        return await _status(client, owner, running["id"]) == "processing"

    await until(is_running)
    response = await client.post(f"/v1/jobs/{running['id']}/cancel", headers=owner.headers)
    assert response.json()["status"] == "cancelled"

    async def aborted() -> bool:
        return running["id"] not in jobs_worker.runner.running

    await until(aborted, seconds=3)  # the worker dropped it, long before its 20 s were up
    done = await wait_for(client, owner, nxt["id"])
    assert done["status"] == "completed"
    final = (await client.get(f"/v1/jobs/{running['id']}", headers=owner.headers)).json()
    assert final["status"] == "cancelled" and final["output_data"] is None
    output = await client.get(f"/v1/jobs/{running['id']}/output", headers=owner.headers)
    assert output.status_code == 409


async def test_a_stalled_run_is_detected_and_the_job_runs_again(
    client: httpx.AsyncClient, owner: Account, create_job: CreateJob, jobs_worker: JobsWorker
) -> None:
    job = await create_job("test-sleep", input_data={"seconds": 1.0})

    async def is_running() -> bool:
        return await _status(client, owner, job["id"]) == "processing"

    await until(is_running)
    # The worker freezes (no heartbeats): its run's writes must not count once the job is taken over.
    runner = jobs_worker.runner
    original = runner._heartbeat

    async def frozen(job_id: str, token: Any) -> bool:
        await asyncio.sleep(3600)
        return True

    runner._heartbeat = frozen
    try:

        async def requeued() -> bool:
            history = await _history(client, owner, job["id"])
            return ("processing", "queued") in history

        await until(requeued, seconds=10)
    finally:
        runner._heartbeat = original
    done = await wait_for(client, owner, job["id"])
    assert done["status"] == "completed"
    assert done["attempts"] == 2
    history = await _history(client, owner, job["id"])
    assert history.count(("processing", "completed")) == 1


async def test_a_worker_shutting_down_hands_its_job_back(
    client: httpx.AsyncClient, owner: Account, create_job: CreateJob, app: FastAPI, settings: Any
) -> None:
    worker = await JobsWorker(settings).start()
    job = await create_job("test-sleep", input_data={"seconds": 30})

    async def is_running() -> bool:
        return await _status(client, owner, job["id"]) == "processing"

    await until(is_running)
    await worker.stop()
    after = (await client.get(f"/v1/jobs/{job['id']}", headers=owner.headers)).json()
    assert after["status"] == "queued" and after["attempts"] == 0
    assert (await _history(client, owner, job["id"]))[-1] == ("processing", "queued")


def test_outputs_are_made_storable() -> None:
    from backplane.jobs.runner import storable

    assert storable({"a\x00": ["x\x00y", float("nan"), float("inf"), 1.5, {"n": None}]}) == {
        "a": ["xy", None, None, 1.5, {"n": None}]
    }


async def test_a_failing_heartbeat_does_not_fail_the_attempt_or_leave_the_agent_running(
    client: httpx.AsyncClient, owner: Account, create_job: CreateJob, jobs_worker: JobsWorker
) -> None:
    runner = jobs_worker.runner
    original = runner._heartbeat
    calls = 0

    async def flaky(job_id: str, token: Any) -> bool:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise ConnectionError("database briefly unreachable")
        return await original(job_id, token)

    runner._heartbeat = flaky
    try:
        job = await create_job("test-sleep", input_data={"seconds": 1.0})
        done = await wait_for(client, owner, job["id"])
    finally:
        runner._heartbeat = original
    assert calls > 2
    assert done["status"] == "completed" and done["attempts"] == 1


Heartbeat = Callable[[str, Any], Awaitable[bool]]


async def _stopped_in_a_heartbeat(
    client: httpx.AsyncClient,
    owner: Account,
    create_job: CreateJob,
    settings: Any,
    on_cancel: Callable[[Heartbeat, str, Any], Awaitable[bool]],
) -> dict[str, Any]:
    """A running job's worker stopped while the run waits in a heartbeat; `on_cancel(real heartbeat,
    job id, token)` is what that heartbeat does when the shutdown's cancellation reaches it. The job
    afterwards."""
    worker = await JobsWorker(settings).start()
    runner = worker.runner
    original = runner._heartbeat
    in_heartbeat = asyncio.Event()

    async def waiting(job_id: str, token: Any) -> bool:
        in_heartbeat.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            return await on_cancel(original, job_id, token)
        return True

    job = await create_job("test-sleep", input_data={"seconds": 30})

    async def is_running() -> bool:
        return await _status(client, owner, job["id"]) == "processing"

    await until(is_running)
    runner._heartbeat = waiting
    try:
        await asyncio.wait_for(in_heartbeat.wait(), 10)
        await asyncio.wait_for(worker.stop(), 10)
    finally:
        runner._heartbeat = original
    after: dict[str, Any] = (await client.get(f"/v1/jobs/{job['id']}", headers=owner.headers)).json()
    return after


async def test_a_shutdown_that_interrupts_a_heartbeat_still_hands_the_job_back(
    client: httpx.AsyncClient, owner: Account, create_job: CreateJob, app: FastAPI, settings: Any
) -> None:
    """The cancellation of a shutdown can reach the run while its heartbeat's statement is in flight,
    and a database driver may report the interrupted statement as an error of its own rather than as the
    cancellation: the run must still stop and hand its job back, not take it for a failed heartbeat and
    run on."""

    async def interrupted(real: Heartbeat, job_id: str, token: Any) -> bool:
        raise RuntimeError("the statement was interrupted")

    after = await _stopped_in_a_heartbeat(client, owner, create_job, settings, interrupted)
    assert (after["status"], after["attempts"]) == ("queued", 0)


async def test_a_shutdown_whose_cancellation_a_heartbeat_swallows_still_hands_the_job_back(
    client: httpx.AsyncClient, owner: Account, create_job: CreateJob, app: FastAPI, settings: Any
) -> None:
    """The other way the shutdown's cancellation can be lost in a heartbeat's statement: the driver
    swallows it and the statement ends normally. The run must still stop and hand its job back; it
    used to heartbeat on until the agent's time limit (a 30 s stop, and the job failed with TIMEOUT:
    about one run in eight of test_a_worker_shutting_down_hands_its_job_back)."""

    async def swallowed(real: Heartbeat, job_id: str, token: Any) -> bool:
        return await real(job_id, token)

    after = await _stopped_in_a_heartbeat(client, owner, create_job, settings, swallowed)
    assert (after["status"], after["attempts"]) == ("queued", 0)


async def test_a_shutdown_between_the_claim_and_the_agent_hands_the_job_back(
    client: httpx.AsyncClient, owner: Account, create_job: CreateJob, settings: Any, monkeypatch: Any
) -> None:
    """The shutdown's cancellation can reach a run after its claim committed and before its agent
    started (announcing the start, its webhook's "start" call): the job goes back to the queue then
    too. It used to stay `processing` until the sweeper found it stalled (one run of
    test_a_worker_shutting_down_hands_its_job_back in a full suite)."""
    from backplane.jobs import hooks

    announcing = asyncio.Event()

    async def slow_start(*_: Any, **__: Any) -> None:
        announcing.set()
        await asyncio.sleep(3600)

    monkeypatch.setattr(hooks, "notify_now", slow_start)
    worker = await JobsWorker(settings).start()
    job = await create_job("test-sleep", input_data={"seconds": 30})
    await asyncio.wait_for(announcing.wait(), timeout=30)
    await asyncio.wait_for(worker.stop(), timeout=10)
    after = (await client.get(f"/v1/jobs/{job['id']}", headers=owner.headers)).json()
    assert (after["status"], after["attempts"]) == ("queued", 0)
    assert (await _history(client, owner, job["id"]))[-1] == ("processing", "queued")

"""`backplane worker` outlives its stores: Redis and PostgreSQL cut under a running worker and
restored, and work whose Redis message was lost found again from PostgreSQL."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from backplane.core import keys
from backplane.core.config import Settings
from backplane.webhooks.tasks import dispatch_task
from backplane.workers import run
from tests.conftest import TEST_REDIS_URL
from tests.fixtures.auth import Account, Api
from tests.fixtures.proxy import TcpProxy
from tests.webhooks.conftest import Receiver, record, worker_context
from tests.workers.conftest import RunningWorker, answers, until

StartWorker = Callable[[Settings], Awaitable[RunningWorker]]


async def _job(client: httpx.AsyncClient, account: Account, **body: Any) -> dict[str, Any]:
    created = await client.post("/v1/jobs", json={"agent_id": "test-noop", **body}, headers=account.headers)
    assert created.status_code == 201, created.text
    job: dict[str, Any] = created.json()
    return job


async def _waited(client: httpx.AsyncClient, account: Account, job_id: str, seconds: int = 20) -> dict[str, Any]:
    response = await client.get(f"/v1/jobs/{job_id}", params={"wait": seconds}, headers=account.headers)
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    return job


def _outage_lines(caplog: pytest.LogCaptureFixture, store: str) -> tuple[int, int]:
    messages = [r.getMessage() for r in caplog.records if r.name == "backplane.workers.resilience"]
    return (
        sum(m.startswith(f"{store} unreachable") for m in messages),
        sum(m.startswith(f"{store} reachable again") for m in messages),
    )


async def _flush_redis() -> None:
    redis = Redis.from_url(TEST_REDIS_URL)
    await redis.flushdb()
    await redis.aclose()


async def test_the_worker_outlives_a_redis_outage_and_runs_the_jobs_created_during_it(
    api: Api,
    client: httpx.AsyncClient,
    start_worker: StartWorker,
    worker_settings: Settings,
    redis_proxy: TcpProxy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="backplane.workers.resilience")
    account = await api.register()
    worker = await start_worker(worker_settings)
    await until(lambda: answers(worker, 200))
    assert (await worker.health()).json() == {"status": "ready", "checks": {"database": "ok", "redis": "ok"}}
    before = await _job(client, account, input_data={"echo": "before"})
    assert (await _waited(client, account, before["id"]))["status"] == "completed"
    redis = Redis.from_url(TEST_REDIS_URL, decode_responses=True)
    [beat] = await redis.keys(keys.worker_heartbeat("*"))
    assert json.loads(await redis.get(beat) or "{}")["queues"] == ["backplane:queue", "backplane:jobs"]

    await redis_proxy.stop()

    await until(lambda: answers(worker, 503))
    assert (await worker.health()).json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "redis": "unavailable"},
    }
    assert (await worker.health("/health")).status_code == 200  # alive: nothing for a supervisor to restart
    during = await _job(client, account, input_data={"echo": "during"})  # the API reaches Redis directly

    await redis_proxy.start()

    job = await _waited(client, account, during["id"])
    assert job["status"] == "completed"
    assert job["output_data"] == {"echo": "during", "files": []}
    await until(lambda: answers(worker, 200))
    assert worker.task is not None and not worker.task.done()
    assert _outage_lines(caplog, "Redis") == (1, 1)  # one line when lost, one when back
    await redis.aclose()
    assert await worker.close() == 0


async def test_the_worker_outlives_a_postgresql_outage(
    api: Api,
    client: httpx.AsyncClient,
    start_worker: StartWorker,
    worker_settings: Settings,
    pg_proxy: TcpProxy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="backplane.workers.resilience")
    account = await api.register()
    worker = await start_worker(worker_settings)
    await until(lambda: answers(worker, 200))

    await pg_proxy.stop()

    await until(lambda: answers(worker, 503))
    assert (await worker.health()).json()["checks"] == {"database": "unavailable", "redis": "ok"}
    during = await _job(client, account, input_data={"echo": "during"})  # the API reaches PostgreSQL directly

    await pg_proxy.start()

    job = await _waited(client, account, during["id"], seconds=30)
    assert job["status"] == "completed"
    history = (await client.get(f"/v1/jobs/{during['id']}/history", headers=account.headers)).json()
    assert [t["to_status"] for t in history].count("completed") == 1
    await until(lambda: answers(worker, 200))
    assert _outage_lines(caplog, "PostgreSQL") == (1, 1)
    assert await worker.close() == 0


async def test_the_worker_starts_while_redis_is_down_and_begins_once_it_answers(
    api: Api, client: httpx.AsyncClient, start_worker: StartWorker, worker_settings: Settings, redis_proxy: TcpProxy
) -> None:
    account = await api.register()
    await redis_proxy.stop()
    worker = await start_worker(worker_settings)
    await until(lambda: answers(worker, 503))
    job = await _job(client, account)

    await redis_proxy.start()

    assert (await _waited(client, account, job["id"]))["status"] == "completed"
    assert await worker.close() == 0


async def test_a_job_whose_message_redis_lost_runs_without_waiting_for_the_dispatch_timeout(
    api: Api, client: httpx.AsyncClient, start_worker: StartWorker, worker_settings: Settings
) -> None:
    account = await api.register()
    job = await _job(client, account)  # handed out: its message waits in Redis for a worker
    await _flush_redis()  # Redis restarted without persistence

    await start_worker(worker_settings)  # JOB_DISPATCH_TIMEOUT_SECONDS is 300, RECOVERY_SECONDS 3

    done = await _waited(client, account, job["id"])
    assert done["status"] == "completed"
    assert done["attempts"] == 1
    history = (await client.get(f"/v1/jobs/{job['id']}/history", headers=account.headers)).json()
    assert [t["to_status"] for t in history] == ["pending", "queued", "processing", "completed"]


async def test_a_delivery_whose_job_redis_lost_is_sent_once_without_waiting_minutes(
    api: Api, client: httpx.AsyncClient, start_worker: StartWorker, settings: Settings, worker_settings: Settings
) -> None:
    receiver = Receiver()
    receiver.start()
    try:
        account = await api.register()
        created = await client.post(
            "/v1/webhooks", json={"url": receiver.url(), "events": ["job.completed"]}, headers=account.headers
        )
        assert created.status_code == 201, created.text
        event_id = await record(settings, account.organization_id, "job.completed", {"id": "job_1"})
        async with worker_context(settings) as ctx:
            assert await dispatch_task(ctx) == 1  # the delivery is in PostgreSQL, its job in Redis
        await _flush_redis()

        await start_worker(worker_settings)

        async def recorded() -> bool:  # the pump records an answered attempt just after the receiver has it
            listed = await client.get(f"/v1/webhooks/{created.json()['id']}/deliveries", headers=account.headers)
            return [d["status"] for d in listed.json()["data"]] == ["succeeded"]

        await until(recorded)
        assert receiver.processed == [event_id]
        assert len(receiver.received) == 1
    finally:
        receiver.stop()


async def test_redis_lost_while_arq_watches_a_key_is_an_outage_not_a_crash(redis_proxy: TcpProxy) -> None:
    """redis-py turns a connection lost inside WATCH into a WatchError (arq's `start_jobs` watches each
    job's key): a worker whose poll met it died with it, under load, instead of waiting Redis out."""
    from redis.exceptions import WatchError

    from backplane.workers.resilience import Stores, redis_down

    client = Redis(host="127.0.0.1", port=redis_proxy.port)
    try:
        async with client.pipeline(transaction=True) as pipe:
            await pipe.watch("bp:test:watched")
            await redis_proxy.stop()
            with pytest.raises(WatchError) as raised:
                await pipe.exists("bp:test:watched")
    finally:
        await redis_proxy.start()
        await client.aclose()
    assert redis_down(raised.value)
    stores = Stores()
    assert stores.noticed(raised.value) and not stores.redis.up
    assert not redis_down(WatchError("Watched variable changed."))  # arq's own race: not an outage


async def test_a_worker_whose_close_fails_for_another_reason_says_so(
    start_worker: StartWorker,
    worker_settings: Settings,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A store still away is why a close may fail quietly (the outage is logged once already); anything
    else (its shutdown's hand-back of running jobs failing, say) is an operator's to see."""
    worker = await start_worker(worker_settings)
    await until(lambda: answers(worker, 200))
    real_close = run.close_worker

    async def failing_close(arq_worker: Any) -> None:
        await real_close(arq_worker)
        raise RuntimeError("the shutdown failed")

    monkeypatch.setattr(run, "close_worker", failing_close)
    caplog.set_level(logging.ERROR, logger="backplane.workers.run")
    assert await worker.close() == 0
    failed = [r for r in caplog.records if r.name == "backplane.workers.run"]
    assert [r.getMessage() for r in failed] == [
        "closing the worker of backplane:queue failed",
        "closing the worker of backplane:jobs failed",
    ]
    assert all(r.exc_info and r.exc_info[1] is not None for r in failed)

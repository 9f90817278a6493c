"""Jobs through real `backplane serve` and `backplane worker` processes: the guide's flows over HTTP,
a worker killed with SIGKILL mid-job, and an idempotent request still in flight."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from backplane.core.config import Settings
from tests.fixtures.auth import PASSWORD
from tests.fixtures.processes import backplane_processes, worker_process

FAST = {
    "AGENT_TEST_MODE": "true",
    "JOB_HEARTBEAT_SECONDS": "0.3",
    "JOB_STALL_SECONDS": "2",
    "JOB_RETRY_BASE_SECONDS": "0.1",
    "JOB_SWEEP_INTERVAL_SECONDS": "0.3",
    "RATE_LIMITS_ENABLED": "false",
}


@pytest.fixture
def env(settings: Settings) -> dict[str, str]:
    return {
        "DATABASE_URL": settings.database.url,
        "REDIS_URL": settings.redis.url,
        "SECRET_KEY": settings.secret_key,
        "STORAGE_DIR": str(settings.storage_dir),
        **FAST,
    }


@pytest.fixture
def api_only(env: dict[str, str]) -> Iterator[str]:
    with backplane_processes(env, worker=False) as base_url:
        yield base_url


async def _headers(base_url: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        email = f"jobs{time.monotonic_ns()}@example.com"
        registered = await http.post(
            "/api/v1/auth/register/",
            json={"email": email, "password": PASSWORD, "full_name": "Jo", "company_name": "Jobs Co"},
        )
        assert registered.status_code == 201, registered.text
        login = await http.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
        access = login.json()["tokens"]["access_token"]
        key = await http.post("/v1/api-keys", json={"name": "ci"}, headers={"Authorization": f"Bearer {access}"})
        return {"Authorization": f"Bearer {key.json()['key']}"}


@pytest.fixture
async def http(api_only: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_only, timeout=90) as client:
        client.headers.update(await _headers(api_only))
        yield client


async def _until_status(http: httpx.AsyncClient, job_id: str, status: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while (await http.get(f"/v1/jobs/{job_id}")).json()["status"] != status:
        assert time.monotonic() < deadline, f"job never reached {status}"
        await asyncio.sleep(0.1)


async def test_create_wait_output_and_batch(http: httpx.AsyncClient, env: dict[str, str]) -> None:
    with worker_process(env):
        created = await http.post("/v1/jobs", json={"agent_id": "test-noop", "input_data": {"echo": "hi"}})
        assert created.status_code == 201
        job = (await http.get(f"/v1/jobs/{created.json()['id']}", params={"wait": 30})).json()
        assert job["status"] == "completed"
        output = await http.get(f"/v1/jobs/{job['id']}/output")
        assert output.json()["content"] == {"echo": "hi", "files": []}

        batch = await http.post(
            "/v1/jobs/batch", json={"jobs": [{"agent_id": "test-noop", "input_data": {"echo": i}} for i in range(5)]}
        )
        assert batch.status_code == 201
        results = await asyncio.gather(
            *(http.get(f"/v1/jobs/{j['id']}", params={"wait": 30}) for j in batch.json()["data"])
        )
        assert sorted(r.json()["output_data"]["echo"] for r in results) == [0, 1, 2, 3, 4]


async def test_a_worker_killed_mid_job_leaves_it_to_complete_once(http: httpx.AsyncClient, env: dict[str, str]) -> None:
    created = await http.post("/v1/jobs", json={"agent_id": "test-sleep", "input_data": {"seconds": 2}})
    job_id = created.json()["id"]
    with worker_process(env) as doomed:
        await _until_status(http, job_id, "processing")
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
    with worker_process(env):
        job = (await http.get(f"/v1/jobs/{job_id}", params={"wait": 40})).json()
    assert job["status"] == "completed", job
    assert job["attempts"] == 2
    assert job["output_data"] == {"slept": 2.0}
    history = (await http.get(f"/v1/jobs/{job_id}/history")).json()
    assert [t["to_status"] for t in history].count("completed") == 1
    assert "stopped responding" in next(t["reason"] for t in history if t["from_status"] == "processing")


async def test_a_repeat_while_the_first_request_is_in_flight_is_409(http: httpx.AsyncClient) -> None:
    release = asyncio.Event()
    boundary = "b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="agent_id"\r\n\r\ntest-noop\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="a.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()
    tail = f"hello world\r\n--{boundary}--\r\n".encode()

    async def slow_body() -> AsyncIterator[bytes]:
        yield head
        await release.wait()
        yield tail

    headers = {
        "Idempotency-Key": "slow-upload",
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(len(head) + len(tail)),
    }
    first = asyncio.create_task(http.post("/v1/jobs", content=slow_body(), headers=headers))
    await asyncio.sleep(1.0)
    second = await http.post("/v1/jobs", content=head + tail, headers=headers)
    assert second.status_code == 409, second.text
    assert second.json()["error"]["code"] == "IDEMPOTENCY_KEY_IN_USE"
    release.set()
    done = await first
    assert done.status_code == 201, done.text
    replay = await http.post("/v1/jobs", content=head + tail, headers=headers)
    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == done.json()["id"]


async def test_cancel_retry_concurrency_and_quota_through_real_processes(
    http: httpx.AsyncClient, env: dict[str, str]
) -> None:
    with worker_process(env):
        # Free plan: one job at a time. The second waits in QUEUED while the first runs.
        running = (await http.post("/v1/jobs", json={"agent_id": "test-sleep", "input_data": {"seconds": 30}})).json()
        waiting = (await http.post("/v1/jobs", json={"agent_id": "test-noop"})).json()
        queued_then_cancelled = (await http.post("/v1/jobs", json={"agent_id": "test-noop"})).json()
        await _until_status(http, running["id"], "processing")
        await asyncio.sleep(1.0)
        assert (await http.get(f"/v1/jobs/{waiting['id']}")).json()["status"] == "queued"

        cancelled = await http.post(f"/v1/jobs/{queued_then_cancelled['id']}/cancel")
        assert cancelled.json()["status"] == "cancelled"
        aborted = await http.post(f"/v1/jobs/{running['id']}/cancel")  # running: aborted at once
        assert aborted.json()["status"] == "cancelled"
        done = (await http.get(f"/v1/jobs/{waiting['id']}", params={"wait": 30})).json()
        assert done["status"] == "completed"
        assert (await http.get(f"/v1/jobs/{running['id']}/output")).status_code == 409

        # A deliberately failing agent: three attempts, then the dead-letter queue; retry runs it again.
        failing = (
            await http.post("/v1/jobs", json={"agent_id": "test-fail", "input_data": {"message": "nope"}})
        ).json()
        dead = (await http.get(f"/v1/jobs/{failing['id']}", params={"wait": 30})).json()
        assert dead["status"] == "dead_letter" and dead["attempts"] == 3
        retried = await http.post(f"/v1/jobs/{failing['id']}/retry")
        assert retried.json()["status"] == "queued"
        again = (await http.get(f"/v1/jobs/{failing['id']}", params={"wait": 30})).json()
        assert again["status"] == "dead_letter" and again["attempts"] == 3

        # Quota: 100 jobs a month on the free plan; 4 used (the job cancelled before it ran gave its back,
        # the retry took one more).
        used = 4
        batch = await http.post("/v1/jobs/batch", json={"jobs": [{"agent_id": "test-noop"}] * (100 - used)})
        assert batch.status_code == 201, batch.text
        over = await http.post("/v1/jobs", json={"agent_id": "test-noop"})
        assert over.status_code == 429
        assert over.json()["error"]["code"] == "QUOTA_EXCEEDED"

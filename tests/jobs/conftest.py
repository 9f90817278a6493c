"""Jobs run by a real arq worker on the agent-jobs queue, inside the test's event loop.

The lifecycle's clocks are shrunk (heartbeats, stall detection, backoff, sweeps) so retries,
crashes and dead letters play out in seconds; the code paths are the production ones.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from arq.worker import Worker

from backplane.core.config import Settings
from backplane.workers.resilience import ResilientWorker, Stores
from backplane.workers.run import close_worker
from backplane.workers.settings import jobs_worker_options
from tests.fixtures.auth import Account, Api
from tests.fixtures.waiting import until  # noqa: F401 (imported from here by the tests)

FAST = {
    "agent_test_mode": True,
    "job_heartbeat_seconds": 0.2,
    "job_stall_seconds": 1.5,
    "job_retry_base_seconds": 0.05,
    "job_sweep_interval_seconds": 0.2,
    "job_dispatch_timeout_seconds": 5.0,
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update=FAST)


class JobsWorker:
    def __init__(self, settings: Settings, poll_delay: float = 0.05) -> None:
        self.settings = settings
        self.poll_delay = poll_delay
        self.worker: Worker | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> JobsWorker:
        options = jobs_worker_options(self.settings)
        options["poll_delay"] = self.poll_delay
        self.worker = ResilientWorker(handle_signals=False, stores=Stores(), backoff_cap=1.0, **options)
        self.task = asyncio.create_task(self.worker.async_run())
        while "runner" not in self.worker.ctx:  # started once on_startup has run
            await asyncio.sleep(0.01)
            if self.task.done():
                self.task.result()
        return self

    @property
    def runner(self) -> Any:
        assert self.worker is not None
        return self.worker.ctx["runner"]

    async def stop(self) -> None:
        if self.worker is None or self.task is None:
            return
        self.worker.handle_sig(signal.SIGTERM)
        await asyncio.gather(self.task, return_exceptions=True)
        await close_worker(self.worker)
        self.worker = self.task = None


@pytest.fixture
async def jobs_worker(app: object, settings: Settings) -> AsyncIterator[JobsWorker]:
    worker = await JobsWorker(settings).start()
    try:
        yield worker
    finally:
        await worker.stop()


@pytest.fixture
async def owner(api: Api) -> Account:
    return await api.register()


CreateJob = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def create_job(client: httpx.AsyncClient, owner: Account) -> CreateJob:
    async def _create(agent_id: str = "test-noop", account: Account | None = None, **body: Any) -> dict[str, Any]:
        response = await client.post(
            "/v1/jobs", json={"agent_id": agent_id, **body}, headers=(account or owner).headers
        )
        assert response.status_code == 201, response.text
        job: dict[str, Any] = response.json()
        return job

    return _create


async def wait_for(client: httpx.AsyncClient, account: Account, job_id: str, seconds: float = 20) -> dict[str, Any]:
    response = await client.get(f"/v1/jobs/{job_id}", params={"wait": seconds}, headers=account.headers)
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    return job

"""A real `backplane worker` (the code `backplane worker` runs) inside the test's event loop, with
its Redis and PostgreSQL behind loopback proxies the tests cut and restore."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from sqlalchemy.engine import make_url

from backplane.core.config import DatabaseSettings, RedisSettings, Settings
from backplane.workers.run import run_workers
from tests.conftest import TEST_REDIS_URL
from tests.fixtures.net import free_port
from tests.fixtures.proxy import TcpProxy
from tests.fixtures.waiting import until  # noqa: F401 (imported from here by the tests)

FAST = {
    "agent_test_mode": True,
    "job_heartbeat_seconds": 0.2,
    "job_stall_seconds": 1.5,
    "job_retry_base_seconds": 0.05,
    "job_sweep_interval_seconds": 0.2,
    "job_dispatch_timeout_seconds": 300.0,  # recovery must not wait for it
    "recovery_seconds": 3.0,
    "webhook_allow_private_targets": True,
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update=FAST)


@pytest.fixture
def worker_settings(settings: Settings, redis_proxy: TcpProxy, pg_proxy: TcpProxy) -> Settings:
    """The worker's settings: the same database and Redis, reached through the proxies."""
    database_url = make_url(settings.database.url).set(port=pg_proxy.port).render_as_string(hide_password=False)
    redis_db = TEST_REDIS_URL.rsplit("/", 1)[-1]
    return settings.model_copy(
        update={
            "database": DatabaseSettings(url=database_url, pool_size=5, connect_timeout_seconds=1),
            "redis": RedisSettings(url=f"redis://127.0.0.1:{redis_proxy.port}/{redis_db}", timeout_seconds=2),
        }
    )


class RunningWorker:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.health_port = free_port()
        self.stop = asyncio.Event()
        self.task: asyncio.Task[int] | None = None

    async def start(self) -> RunningWorker:
        self.task = asyncio.create_task(run_workers(self.settings, health_port=self.health_port, stop=self.stop))
        return self

    async def health(self, path: str = "/health/ready") -> httpx.Response:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.health_port}", timeout=5) as http:
            return await http.get(path)

    async def close(self) -> int:
        assert self.task is not None
        self.stop.set()
        return await asyncio.wait_for(self.task, timeout=60)


@pytest.fixture
async def start_worker(
    app: object, redis_proxy: TcpProxy, pg_proxy: TcpProxy
) -> AsyncIterator[Callable[[Settings], Awaitable[RunningWorker]]]:
    """Workers stopped before the proxies (and the app) go away."""
    started: list[RunningWorker] = []

    async def _start(settings: Settings) -> RunningWorker:
        worker = await RunningWorker(settings).start()
        started.append(worker)
        return worker

    yield _start
    for worker in started:
        if worker.task is not None and not worker.task.done():
            await worker.close()


async def answers(worker: RunningWorker, status: int, path: str = "/health/ready") -> bool:
    try:
        return (await worker.health(path)).status_code == status
    except httpx.TransportError:
        return False

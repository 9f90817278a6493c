"""The worker's process and Python's cyclic garbage collector."""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable
from typing import Any

from backplane.core.config import Settings
from tests.workers.conftest import RunningWorker, until


async def test_a_running_worker_keeps_what_start_up_built_out_of_the_collectors_sight(
    start_worker: Callable[[Settings], Awaitable[RunningWorker]], worker_settings: Settings
) -> None:
    """A worker's heap is mostly what start-up built (the agents and their libraries: about 200,000
    objects, which one full collection walks in over 100 ms on a 2-core machine), and a collection that
    walks it pauses every job and delivery under way. Frozen once the workers have started, as the API
    does (app.py); given back when they stop, so that a process that runs workers again does not keep
    every one."""
    gc.unfreeze()

    async def frozen() -> bool:
        return gc.get_freeze_count() > 0

    worker = await start_worker(worker_settings)
    await until(frozen)
    assert await worker.close() == 0
    assert gc.get_freeze_count() == 0


async def test_a_jobs_worker_stopped_before_its_start_up_ended_still_closes_what_it_opened(settings: Settings) -> None:
    """A stop that comes while the jobs worker is still starting (its runner not built yet: a rollout
    that sends SIGTERM right after the start) must still close the clients start-up had opened. Its
    shutdown used to fail on the missing runner, and `run_workers` swallowed that: the worker's HTTP
    client and arq's Redis connection were left open. Start-up now registers each close as it opens
    the thing, and shutdown closes what was registered."""
    from backplane.workers.settings import jobs_worker_options, startup

    ctx: dict[str, Any] = {"settings": settings, "jobs_worker": True}
    await startup(ctx)  # what jobs_startup does first; the runner comes after
    await jobs_worker_options(settings)["on_shutdown"](ctx)
    assert ctx["webhook_http"].closed

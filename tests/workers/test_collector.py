"""The worker's process and Python's cyclic garbage collector."""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable

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

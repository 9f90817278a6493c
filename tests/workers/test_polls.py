"""An arq poll of a busy worker: the jobs the worker runs itself, and those running elsewhere, cost no
round trip each (arq's own check is a WATCH, EXISTS, ZSCORE and UNWATCH per job it reads)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from arq.connections import ArqRedis, create_pool
from arq.worker import func

from backplane.core.config import Settings
from backplane.workers.resilience import ResilientWorker, Stores
from backplane.workers.settings import redis_settings


def _counting_transactions(pool: ArqRedis) -> list[int]:
    """Counts the transactional pipelines `pool` makes from now on (arq's per-job check is one)."""
    made = [0]
    pipeline: Callable[..., Any] = pool.pipeline

    def counted(transaction: bool = True, shard_hint: Any = None) -> Any:
        if transaction:
            made[0] += 1
        return pipeline(transaction=transaction, shard_hint=shard_hint)

    pool.pipeline = counted  # type: ignore[method-assign]
    return made


async def _worker(
    settings: Settings, queue: str, task: Callable[..., Any], **options: Any
) -> tuple[ResilientWorker, ArqRedis]:
    """A worker on `queue` running `task`, with the arq pool its `main` would have made."""
    worker = ResilientWorker(
        functions=[func(task, name=task.__name__)],
        redis_settings=redis_settings(settings),
        stores=Stores(),
        backoff_cap=1.0,
        queue_name=queue,
        handle_signals=False,
        **options,
    )
    pool = worker._pool = await create_pool(redis_settings(settings), default_queue_name=queue)
    return worker, pool


async def test_a_poll_asks_nothing_of_each_job_already_running(settings: Settings) -> None:
    release = asyncio.Event()

    async def hold(ctx: dict[str, Any]) -> None:
        await release.wait()

    queue = f"test:polls:{uuid.uuid4().hex}"
    pools: list[ArqRedis] = []
    workers = []
    try:
        for _ in range(2):
            worker, pool = await _worker(settings, queue, hold, poll_delay=60, max_jobs=40)
            pools.append(pool)
            workers.append(worker)
        mine, other = workers
        for n in range(10):
            await pools[0].enqueue_job("hold", _job_id=f"other-{n}")
        await other._poll_iteration()  # another worker runs these 10
        for n in range(10):
            await pools[0].enqueue_job("hold", _job_id=f"mine-{n}")
        await mine._poll_iteration()  # this one runs the next 10
        assert (len(other.tasks), len(mine.tasks)) == (10, 10)

        made = _counting_transactions(mine.pool)
        await pools[0].enqueue_job("hold", _job_id="new")
        await mine._poll_iteration()  # reads all 21 queued ids: only the new one is checked and started
        assert "new" in mine.tasks
        assert made[0] <= 2  # the new job's check, and its start (run_job reads it in one); not one for each of the 20
    finally:
        release.set()
        for worker in workers:
            await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
        for pool in pools:
            await pool.delete(queue)
            await pool.aclose()


async def test_a_job_read_off_the_queue_is_started_in_one_round_trip(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """arq checks and marks each job it starts in four round trips (WATCH, EXISTS, ZSCORE, then MULTI,
    PSETEX, EXEC); one script does the same in one. A webhook delivery and a job's message each start so."""
    release = asyncio.Event()

    async def hold(ctx: dict[str, Any]) -> None:
        await release.wait()

    queue = f"test:polls:{uuid.uuid4().hex}"
    worker, pool = await _worker(settings, queue, hold, poll_delay=60)
    try:
        await pool.enqueue_job("hold", _job_id="one")
        await pool.enqueue_job("hold", _job_id="later", _defer_by=60)  # not due: left alone
        sends: list[bytes] = []
        connection_class = pool.connection_pool.connection_class
        send = connection_class.send_packed_command

        async def counted(self: Any, command: Any, check_health: bool = True) -> None:
            sends.append(b"".join(command) if isinstance(command, list) else command)
            await send(self, command, check_health)

        monkeypatch.setattr(connection_class, "send_packed_command", counted)
        await worker._poll_iteration()
        monkeypatch.undo()
        assert list(worker.tasks) == ["one"]
        # Its check and mark went in one round trip (arq's: WATCH and EXISTS of the key, ZSCORE, MULTI..EXEC).
        assert len([sent for sent in sends if b"arq:in-progress:one" in sent]) == 1
        assert await pool.exists("arq:in-progress:one") == 1
        await pool.enqueue_job("hold", _job_id="two")
        await pool.set("arq:in-progress:two", b"1")  # started by another worker meanwhile
        await worker.start_jobs([b"two"])
        assert list(worker.tasks) == ["one"]
    finally:
        release.set()
        await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
        await pool.delete(queue)
        await pool.aclose()


async def test_a_start_redis_refuses_leaves_the_job_and_gives_its_slot_back(settings: Settings) -> None:
    """As arq's own start: a refusal from Redis (here the queue's key holds another type; out of memory
    is the real one) leaves that job unstarted, the slot free, and the poll going."""

    async def noop(ctx: dict[str, Any]) -> None:
        return None

    queue = f"test:polls:{uuid.uuid4().hex}"
    worker, pool = await _worker(settings, queue, noop, max_jobs=1)
    try:
        await pool.set(queue, "not a queue")
        await worker.start_jobs([b"one"])
        assert (worker.job_counter, worker.tasks) == (0, {})
        assert not worker.sem.locked()  # its one slot is free again
    finally:
        await pool.delete(queue)
        await pool.aclose()

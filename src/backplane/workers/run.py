"""`backplane worker`: the short-task worker and the agent-jobs worker, in one process by default.

The process outlives its stores: each arq worker is a `ResilientWorker` that waits out a Redis
outage, the monitor (`health.py`) probes PostgreSQL and Redis, beats, and restores seat leases that
Redis lost, and `--health-port` serves what a supervisor probes. It ends on SIGINT/SIGTERM, or with
status 1 when a worker loop fails for any other reason (a supervisor then restarts it).
"""

from __future__ import annotations

import asyncio
import logging
import signal

from arq.worker import Worker

from backplane.agents import registry
from backplane.core import metrics
from backplane.core.config import Settings
from backplane.core.db import create_engine
from backplane.core.logs import RoutineRuns
from backplane.core.redis import create_redis
from backplane.licenses.leases import Leases
from backplane.licenses.recovery import LeaseRestorer
from backplane.workers.health import HealthServer, Monitor, health_app
from backplane.workers.resilience import ResilientWorker, Stores
from backplane.workers.settings import ROUTINE_CRONS, WorkerSettings, cron_jobs, jobs_worker_options, worker_options

logger = logging.getLogger(__name__)


def backoff_cap(settings: Settings) -> float:
    """The longest wait between two tries at an unreachable store: short enough that work resumes
    well within RECOVERY_SECONDS of the store's return."""
    return min(10.0, settings.recovery_seconds / 6)


def build_workers(settings: Settings, queues: str = "all", stores: Stores | None = None) -> list[Worker]:
    registry.load(test_agents=settings.agent_test_mode)
    stores = stores or Stores()
    workers: list[Worker] = []
    if queues in ("all", "tasks"):
        workers.append(
            ResilientWorker(
                functions=WorkerSettings.functions,
                cron_jobs=cron_jobs(settings.recovery_seconds, settings.job_sweep_interval_seconds),
                queue_name=WorkerSettings.queue_name,
                on_startup=WorkerSettings.on_startup,
                on_shutdown=WorkerSettings.on_shutdown,
                max_jobs=WorkerSettings.max_jobs,
                poll_delay=WorkerSettings.poll_delay,
                handle_signals=False,
                stores=stores,
                backoff_cap=backoff_cap(settings),
                **worker_options(settings),
            )
        )
    if queues in ("all", "jobs"):
        workers.append(
            ResilientWorker(
                handle_signals=False, stores=stores, backoff_cap=backoff_cap(settings), **jobs_worker_options(settings)
            )
        )
    return workers


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def run_workers(
    settings: Settings,
    queues: str = "all",
    *,
    health_host: str = "127.0.0.1",
    health_port: int | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Run the workers until `stop` is set (by default: SIGINT/SIGTERM), then stop them: running
    agent jobs are handed back. The exit status: 0, or 1 when a worker loop failed."""
    stop = stop or _stop_on_signals()
    logging.getLogger("arq.worker").addFilter(RoutineRuns(ROUTINE_CRONS))
    stores = Stores()
    workers = build_workers(settings, queues, stores)
    engine = create_engine(settings)
    redis = create_redis(settings)
    leases = Leases(redis, restore=LeaseRestorer(settings))

    async def restore_leases() -> None:
        if not await leases.restored():
            await leases.ensure_restored()
        metrics.LIVE_LEASES.set(await leases.live_total())

    monitor = Monitor(
        stores,
        engine,
        redis,
        queues=[worker.queue_name for worker in workers],
        backoff_cap=backoff_cap(settings),
        on_beat=restore_leases,
    )
    runs = [asyncio.create_task(worker.async_run(), name=f"worker {worker.queue_name}") for worker in workers]
    background = [asyncio.create_task(monitor.run(), name="worker monitor")]
    health: HealthServer | None = None
    if health_port is not None:
        health = HealthServer(
            health_app(stores, alive=lambda: not any(run.done() for run in runs)), health_host, health_port
        )
        serving = asyncio.create_task(health.serve(), name="worker health")
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait([*runs, stopping], return_when=asyncio.FIRST_COMPLETED)
    status = 0
    for run in runs:
        if run.done():  # before a stop was asked for: a failure no outage handling covers
            status = 1
            logger.error(
                "%s stopped unexpectedly", run.get_name(), exc_info=None if run.cancelled() else run.exception()
            )
    logger.info("stopping workers")
    for worker in workers:
        worker.handle_sig(signal.SIGTERM)
    await asyncio.gather(*runs, return_exceptions=True)
    for worker in workers:
        try:
            await close_worker(worker)
        except Exception as error:  # a store still away: nothing more to tidy there (its outage is logged)
            if not stores.noticed(error):
                logger.exception("closing the worker of %s failed", worker.queue_name)
    if health is not None:
        health.should_exit = True  # closes its socket, which cancelling would leave open
        await serving
    for task in [*background, stopping]:
        task.cancel()
    await asyncio.gather(*background, stopping, return_exceptions=True)
    await redis.aclose()
    await engine.dispose()
    return status


async def close_worker(worker: Worker) -> None:
    """`Worker.close` after its job tasks have ended. arq's own close gathers those tasks, and a task
    it cancelled on shutdown would raise CancelledError there, skipping `on_shutdown` (our cleanup)."""
    await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
    for job_id in [job_id for job_id, task in worker.tasks.items() if task.done()]:
        del worker.tasks[job_id]
    await worker.close()

"""`backplane worker`: the short-task worker and the agent-jobs worker, in one process by default."""

from __future__ import annotations

import asyncio
import logging
import signal

from arq.worker import Worker

from backplane.agents import registry
from backplane.core.config import Settings
from backplane.workers.settings import WorkerSettings, jobs_worker_options, worker_options

logger = logging.getLogger(__name__)


def build_workers(settings: Settings, queues: str = "all") -> list[Worker]:
    registry.load(test_agents=settings.agent_test_mode)
    workers: list[Worker] = []
    if queues in ("all", "tasks"):
        workers.append(
            Worker(
                functions=WorkerSettings.functions,
                cron_jobs=WorkerSettings.cron_jobs,
                queue_name=WorkerSettings.queue_name,
                on_startup=WorkerSettings.on_startup,
                on_shutdown=WorkerSettings.on_shutdown,
                max_jobs=WorkerSettings.max_jobs,
                poll_delay=WorkerSettings.poll_delay,
                handle_signals=False,
                **worker_options(settings),
            )
        )
    if queues in ("all", "jobs"):
        workers.append(Worker(handle_signals=False, **jobs_worker_options(settings)))
    return workers


async def run_workers(settings: Settings, queues: str = "all") -> None:
    """Run the workers until SIGINT/SIGTERM, then stop them: running agent jobs are handed back."""
    workers = build_workers(settings, queues)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runs = [asyncio.create_task(worker.async_run()) for worker in workers]
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait([*runs, stopping], return_when=asyncio.FIRST_COMPLETED)
    logger.info("stopping workers")
    for worker in workers:
        worker.handle_sig(signal.SIGTERM)
    await asyncio.gather(*runs, return_exceptions=True)
    for worker in workers:
        await close_worker(worker)
    stopping.cancel()


async def close_worker(worker: Worker) -> None:
    """`Worker.close` after its job tasks have ended. arq's own close gathers those tasks, and a task
    it cancelled on shutdown would raise CancelledError there, skipping `on_shutdown` (our cleanup)."""
    await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
    for job_id in [job_id for job_id, task in worker.tasks.items() if task.done()]:
        del worker.tasks[job_id]
    await worker.close()

"""arq worker: `backplane worker` runs `WorkerSettings`."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar

from arq.connections import RedisSettings
from arq.cron import CronJob, cron
from arq.worker import Function, func

from backplane.agents import registry, sandbox
from backplane.auth.tasks import send_email_task
from backplane.billing.stripe_client import close_stripe_client, create_stripe_client
from backplane.billing.tasks import report_usage_task
from backplane.core.config import Settings, get_settings
from backplane.core.db import create_engine, create_sessionmaker
from backplane.core.netguard import customer_client
from backplane.core.queue import DEFAULT_QUEUE
from backplane.core.redis import create_redis
from backplane.files.storage import create_storage
from backplane.files.tasks import cleanup_pending_task
from backplane.idempotency.service import purge_expired_task
from backplane.jobs.lifecycle import JOBS_QUEUE, RUN_FUNCTION
from backplane.jobs.runner import Runner, run_job_task
from backplane.licenses.leases import Leases
from backplane.licenses.tasks import record_ended_sessions_task
from backplane.webhooks.sender import new_client as new_webhook_client
from backplane.webhooks.tasks import (
    CHAIN_SECONDS,
    deliver_task,
    dispatch_task,
    start_listening,
    stop_listening,
    sweep_task,
)

logger = logging.getLogger(__name__)


async def startup(ctx: dict[str, Any]) -> None:
    settings = ctx.get("settings") or get_settings()
    ctx["settings"] = settings
    ctx["engine"] = create_engine(settings)
    ctx["redis_app"] = create_redis(settings)
    ctx["sessionmaker"] = create_sessionmaker(ctx["engine"], redis=ctx["redis_app"])
    ctx["leases"] = Leases(ctx["redis_app"])
    ctx["stripe"] = create_stripe_client(settings.stripe)  # None in local billing mode
    ctx["storage"] = await create_storage(settings)
    registry.load(test_agents=settings.agent_test_mode)
    ctx["webhook_http"] = new_webhook_client(settings)
    if not ctx.get("jobs_worker"):
        logger.info("task worker started (queue %s)", DEFAULT_QUEUE)


async def shutdown(ctx: dict[str, Any]) -> None:
    await stop_listening(ctx)
    await ctx["webhook_http"].aclose()
    await ctx["redis_app"].aclose()
    await ctx["engine"].dispose()
    await close_stripe_client(ctx.get("stripe"))
    await ctx["storage"].aclose()


async def tasks_startup(ctx: dict[str, Any]) -> None:
    """The short-task worker also dispatches new events the moment they commit (`webhooks.listen`).

    `ctx["webhook_listener"] = False` leaves that out (tests that run dispatch themselves).
    """
    await startup(ctx)
    if ctx.get("webhook_listener", True):
        start_listening(ctx)


FUNCTIONS: list[Function] = [
    func(send_email_task, name="email.send", max_tries=5, timeout=30),
    func(report_usage_task, name="billing.report_usage", max_tries=5),
    # keep_result=0: a finished attempt leaves no result behind, so the sweep can queue the same
    # job id again if that attempt turns out lost. The timeout covers a chain of attempts to one
    # endpoint (CHAIN_SECONDS) and the last one's own deadline (at most 60 s).
    func(deliver_task, name="webhooks.deliver", max_tries=5, keep_result=0, timeout=CHAIN_SECONDS + 90),
]
CRON_JOBS: list[CronJob] = [
    cron(record_ended_sessions_task, name="licenses.record_ended", second=0, timeout=120, run_at_startup=True),
    cron(cleanup_pending_task, name="files.cleanup_pending", minute={0, 15, 30, 45}, second=30, timeout=300),
    # Every 5 s, the safety net: events are dispatched the moment they commit (`webhooks.listen`),
    # unless that wake-up was lost (Redis unreachable right then, or no worker listening).
    cron(dispatch_task, name="webhooks.dispatch", second=set(range(0, 60, 5)), timeout=60, run_at_startup=True),
    cron(sweep_task, name="webhooks.sweep", second=45, timeout=60),
    cron(purge_expired_task, name="idempotency.purge", minute=7, second=15, timeout=300),
]


class WorkerSettings:
    functions: ClassVar[list[Function]] = FUNCTIONS
    cron_jobs: ClassVar[list[CronJob]] = CRON_JOBS
    on_startup = tasks_startup
    on_shutdown = shutdown
    queue_name = DEFAULT_QUEUE
    # Webhook attempts mostly wait on the network; one endpoint holds at most
    # WEBHOOK_ENDPOINT_CONCURRENCY of these slots, however slow it is.
    max_jobs = 50
    # How often an idle worker looks for due jobs: a new event's first attempt waits up to this long.
    poll_delay = 0.1


def worker_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for `arq.Worker` / `run_worker`, bound to these settings."""
    return {
        "redis_settings": RedisSettings.from_dsn(settings.redis.url),
        "ctx": {"settings": settings},
    }


# Agent jobs run on their own queue: arq recovers a job from a dead worker only after that queue's
# longest function timeout, and a 10-minute agent must not hold up a 10-second webhook delivery.
# Recovery of agent jobs does not wait for arq at all: heartbeats and the sweeper (jobs/runner.py).


async def jobs_startup(ctx: dict[str, Any]) -> None:
    ctx["jobs_worker"] = True
    await startup(ctx)
    settings: Settings = ctx["settings"]
    ctx["http"] = customer_client(15.0)  # agent fetches go to customer URLs; the LLM call shares it
    await asyncio.to_thread(sandbox.start_fork_server)  # parsers' processes fork from it (agents/sandbox.py)
    runner = Runner(settings, ctx["sessionmaker"], ctx["redis_app"], ctx["redis"], ctx["storage"], ctx["http"])
    ctx["runner"] = runner
    runner.start()
    logger.info("agent jobs worker started (queue %s, %d at once)", JOBS_QUEUE, settings.job_worker_concurrency)


async def jobs_shutdown(ctx: dict[str, Any]) -> None:
    await ctx["runner"].stop()
    await ctx["http"].aclose()
    await shutdown(ctx)


def jobs_worker_options(settings: Settings) -> dict[str, Any]:
    """`arq.Worker` keyword arguments for the agent-jobs queue."""
    longest = max([a.time_limit_seconds for a in registry.all_agents()] + [600.0])
    return {
        "functions": [
            # arq's own retry count is irrelevant: attempts are counted in PostgreSQL, and a message
            # re-run after a crash finds its dispatch token stale and does nothing.
            func(run_job_task, name=RUN_FUNCTION, max_tries=1000, timeout=longest + 120),
        ],
        "queue_name": JOBS_QUEUE,
        "on_startup": jobs_startup,
        "on_shutdown": jobs_shutdown,
        "max_jobs": settings.job_worker_concurrency,
        "poll_delay": settings.job_poll_seconds,
        "keep_result": 60,
        "redis_settings": RedisSettings.from_dsn(settings.redis.url),
        "ctx": {"settings": settings},
    }
